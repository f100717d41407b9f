/** Splits a byte stream into lines ending in CR (LF and CRLF tolerated). */
export class LineSplitter {
  private buffer = '';
  push(chunk: string): string[] {
    this.buffer += chunk;
    const parts = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = parts.pop() ?? '';
    if (this.buffer.length > 64 * 1024) this.buffer = '';
    return parts.filter((line) => line.length > 0);
  }
}
