/**
 * The few STOMP 1.2 frames the Web-STOMP comparison needs (CONNECT, SUBSCRIBE, ACK out; CONNECTED, MESSAGE,
 * ERROR in). RabbitMQ Web-STOMP sends one frame per WebSocket message; heart-beat EOLs are skipped.
 */
export interface StompFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

export function encodeFrame(command: string, headers: Record<string, string>, body = ''): string {
  let out = `${command}\n`;
  for (const [key, value] of Object.entries(headers)) out += `${escapeHeader(key)}:${escapeHeader(value)}\n`;
  return `${out}\n${body}\0`;
}

/** Decodes every frame in one WebSocket message. */
export function decodeFrames(data: string): StompFrame[] {
  const frames: StompFrame[] = [];
  let at = 0;
  while (at < data.length) {
    while (data[at] === '\n' || data[at] === '\r') at += 1; // heart-beats
    if (at >= data.length) break;
    const headerEnd = data.indexOf('\n\n', at);
    if (headerEnd < 0) throw new Error('STOMP frame without a blank line after its headers');
    const lines = data.slice(at, headerEnd).split('\n');
    const command = lines[0]!.replace(/\r$/, '');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const key = unescapeHeader(line.slice(0, colon));
      if (!(key in headers)) headers[key] = unescapeHeader(line.slice(colon + 1).replace(/\r$/, '')); // first wins (1.2)
    }
    const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : -1;
    const bodyStart = headerEnd + 2;
    const bodyEnd = length >= 0 ? bodyStart + length : data.indexOf('\0', bodyStart);
    if (bodyEnd < 0) throw new Error('STOMP frame without its NUL terminator');
    frames.push({ command, headers, body: data.slice(bodyStart, bodyEnd) });
    at = bodyEnd + 1;
  }
  return frames;
}

const escapeHeader = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c').replace(/\r/g, '\\r');
const unescapeHeader = (v: string) =>
  v.replace(/\\([\\nrc])/g, (_m, c: string) => ({ '\\': '\\', n: '\n', r: '\r', c: ':' })[c] ?? c);
