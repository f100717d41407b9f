/**
 * An ack-mode notification frame: `{"seq":n,"message":<published bytes>}`. The published bytes are embedded
 * verbatim (they were checked to be a JSON object before delivery), so nothing is parsed or re-serialised.
 * Built in one allocation: this runs once per message and socket, and its garbage was a measurable share
 * of acknowledged delivery's extra cost.
 */
export function ackModeFrame(seq: number, body: Buffer): Buffer {
  // A byte order mark is allowed before a published document but not inside the frame's JSON.
  const start = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  const prefix = `{"seq":${seq},"message":`;
  const frame = Buffer.allocUnsafe(prefix.length + body.length - start + 1);
  const at = frame.write(prefix, 0, 'latin1');
  body.copy(frame, at, start);
  frame[frame.length - 1] = closingBrace;
  return frame;
}

const closingBrace = 0x7d;
