/**
 * What a protocol session may do to its socket. Sessions never touch `ws`, so they run over a fake
 * connection in unit tests. The transport owns heartbeats, frame size limits and backpressure.
 */
export interface Connection {
  readonly id: string;
  readonly remoteAddress: string;
  /**
   * Sends one text frame. A Buffer is sent as-is (no re-encoding): notifications are forwarded byte for byte.
   * Returns false, without calling `onWritten`, when the socket is no longer open (it never will be again).
   * Otherwise `onWritten` is called exactly once, later: without an error once the frame was handed to the
   * kernel, with an error when the socket died first. The transport may close a socket whose unsent buffer
   * passes its high-water mark (slow consumer); frames still queued then fail.
   */
  send(data: string | Buffer, onWritten?: (err?: Error | null) => void): boolean;
  close(code: number, reason: string): void;
  /** Bytes queued in user space and not yet written to the kernel. */
  readonly bufferedAmount: number;
  readonly isOpen: boolean;
}

/** What the transport calls on a session. */
export interface Session {
  onText(text: string): void;
  onBinary(): void;
  onClose(): void;
}
