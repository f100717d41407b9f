import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * The idle bench's load generator: a notification client that writes the same bytes on the wire as a
 * browser (the HTTP upgrade, a masked `joinChannel` frame, masked pongs), without `ws`'s client. With
 * `ws` one client process spent about 900 µs of CPU per join (http.ClientRequest, a random key and a
 * SHA-1 check per socket, a random mask per frame) and sat at 100 % of a core while the gateway was
 * idle half the time, so the bench measured its own client (docs/performance.md, "Joins"). The
 * gateway's side of a join is unchanged: it cannot tell these sockets from `ws`'s.
 */

const opText = 0x1;
const opClose = 0x8;
const opPing = 0x9;
const opPong = 0xa;

/** A client frame (RFC 6455 5.2): FIN, `opcode`, masked with `mask` (client frames must be masked). */
export function maskedFrame(opcode: number, payload: Buffer, mask: Buffer): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + lengthBytes + 4 + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) frame[1] = 0x80 | length;
  else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const maskAt = 2 + lengthBytes;
  mask.copy(frame, maskAt, 0, 4);
  for (let i = 0; i < length; i++) frame[maskAt + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * Splits the bytes a server sends after its 101 into frames (unmasked, as a server's are). Fragmented
 * messages are not reassembled: the gateway sends none to a notification client.
 */
export class ServerFrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ServerFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: ServerFrame[] = [];
    for (;;) {
      const buf = this.pending;
      if (buf.length < 2) break;
      if (buf[1]! & 0x80) throw new Error('a server frame must not be masked');
      let length = buf[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (buf.length < 4) break;
        length = buf.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (buf.length < 10) break;
        length = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + length) break;
      frames.push({ opcode: buf[0]! & 0x0f, payload: buf.subarray(at, at + length) });
      this.pending = buf.subarray(at + length);
    }
    return frames;
  }
}

export interface RawJoinTarget {
  host: string;
  port: number;
  /** Path and query of the notification endpoint. */
  path: string;
  localAddress?: string;
}

/**
 * With a source address, the local ports the client binds itself, one after another (wrapping). A bind
 * to a source address with port 0 makes Linux search its bound ports for a free one on every socket:
 * with 9,000 sockets open the search cost the client process 2.5 s of kernel CPU per 9,000 joins, 11 s
 * with three workers (Node cannot set IP_BIND_ADDRESS_NO_PORT). Binding a chosen port is one lookup.
 */
const firstLocalPort = 20_000;
const lastLocalPort = 60_999;
/** A chosen port may be taken (another socket, a TIME_WAIT): the next one is tried, this many times. */
const bindAttempts = 100;

/** One process's joined sockets: each answers the gateway's pings until `closeAll`. */
export class RawJoinClient {
  private readonly sockets = new Set<Socket>();
  private readonly mask = randomBytes(4);
  private readonly joinFrames = new Map<string, Buffer>();
  private readonly upgradeRequest: Buffer;
  private nextLocalPort = firstLocalPort;

  constructor(private readonly target: RawJoinTarget) {
    this.upgradeRequest = Buffer.from(
      `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  }

  static forUrl(url: string, localAddress?: string): RawJoinClient {
    const parsed = new URL(url);
    if (parsed.protocol !== 'ws:') throw new Error(`the raw join client speaks ws:// only, not ${parsed.protocol}`);
    return new RawJoinClient({ host: parsed.hostname, port: Number(parsed.port || 80), path: `${parsed.pathname}${parsed.search}`, localAddress });
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Opens a socket, joins with `token` and resolves once the gateway answered 200 (rejects otherwise). */
  async join(token: string): Promise<void> {
    const joinFrame = this.joinFrameFor(token);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.joinOnce(joinFrame);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const portTaken = code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL';
        if (!portTaken || this.target.localAddress === undefined || attempt >= bindAttempts) throw err;
      }
    }
  }

  private takeLocalPort(): number {
    const port = this.nextLocalPort;
    this.nextLocalPort = port === lastLocalPort ? firstLocalPort : port + 1;
    return port;
  }

  private joinOnce(joinFrame: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const { host, port, localAddress } = this.target;
      const socket = connect({ host, port, ...(localAddress !== undefined && { localAddress, localPort: this.takeLocalPort() }) });
      socket.setNoDelay(true);
      this.sockets.add(socket);
      let head: Buffer | undefined = Buffer.alloc(0);
      let joined = false;
      const reader = new ServerFrameReader();
      const fail = (reason: Error | string) => {
        if (!joined) reject(typeof reason === 'string' ? new Error(reason) : reason);
        joined = true;
        this.sockets.delete(socket);
        socket.destroy();
      };
      socket.on('connect', () => socket.write(this.upgradeRequest));
      socket.on('error', (err) => fail(err));
      socket.on('close', () => fail('closed before the join was answered'));
      socket.on('data', (chunk: Buffer) => {
        let frameBytes = chunk;
        if (head !== undefined) {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
          if (!/^HTTP\/1\.1 101 /.test(status)) return fail(`upgrade refused: ${status}`);
          frameBytes = head.subarray(end + 4);
          head = undefined;
          socket.write(joinFrame);
        }
        let frames: ServerFrame[];
        try {
          frames = reader.push(frameBytes);
        } catch (err) {
          return fail(err as Error);
        }
        for (const frame of frames) {
          if (frame.opcode === opPing) socket.write(maskedFrame(opPong, frame.payload, this.mask));
          else if (frame.opcode === opClose) fail(`closed by the gateway: ${frame.payload.subarray(2).toString()}`);
          else if (frame.opcode === opText && !joined) {
            const reply = JSON.parse(frame.payload.toString()) as { status?: number };
            if (reply.status !== 200) return fail(`join refused: ${frame.payload.toString()}`);
            joined = true;
            resolve();
          }
        }
      });
    });
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private joinFrameFor(token: string): Buffer {
    let frame = this.joinFrames.get(token);
    if (frame === undefined) {
      const payload = Buffer.from(JSON.stringify({ action: 'joinChannel', data: { authorizationToken: token } }));
      frame = maskedFrame(opText, payload, this.mask);
      this.joinFrames.set(token, frame);
    }
    return frame;
  }
}
