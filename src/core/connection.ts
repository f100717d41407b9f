/**
 * What a protocol session may do to its socket. Sessions never touch `ws`, so they run over a fake
 * connection in unit tests. The transport owns heartbeats, frame size limits and backpressure.
 */
export interface Connection {
  readonly id: string;
  readonly remoteAddress: string;
  /** Sends one text frame. A Buffer is sent as-is (no re-encoding): notifications are forwarded byte for byte. */
  send(data: string | Buffer): void;
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
