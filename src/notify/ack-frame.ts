/**
 * An ack-mode notification frame: `{"seq":n,"message":<published bytes>}`. The published bytes are embedded
 * verbatim (they were checked to be a JSON object before delivery), so nothing is parsed or re-serialised.
 */
export function ackModeFrame(seq: number, body: Buffer): Buffer {
  // A byte order mark is allowed before a published document but not inside the frame's JSON.
  const json = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
  return Buffer.concat([Buffer.from(`{"seq":${seq},"message":`), json, closingBrace]);
}

const closingBrace = Buffer.from('}');
