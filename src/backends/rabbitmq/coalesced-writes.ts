import type { ChannelModel } from 'amqplib';

interface CorkableStream {
  cork(): void;
  uncork(): void;
  write(...args: unknown[]): boolean;
}

/**
 * amqplib hands every frame to the socket with its own `write` (its Mux writes one frame after another),
 * so each frame costs a syscall, and on loopback that syscall also runs the receiving side of TCP. This
 * corks the connection's socket at the first write of a synchronous run and uncorks it on the next tick,
 * so the frames of one run (a burst of relay copies, the acknowledgements of several lanes) leave in one
 * `writev`. Nothing waits longer than the run that wrote it. Measured in docs/performance.md ("Fewer
 * syscalls per frame"). Returns false when the model has no such socket (left as it is).
 */
export function coalesceFrameWrites(model: ChannelModel): boolean {
  const stream = (model as unknown as { connection?: { stream?: Partial<CorkableStream> } }).connection?.stream;
  if (!isCorkable(stream)) return false;
  if (coalescing.has(stream)) return true; // a link rebuilt on the same connection
  coalescing.add(stream);
  const write = stream.write.bind(stream);
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = (...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  };
  return true;
}

const coalescing = new WeakSet<object>();

function isCorkable(stream: Partial<CorkableStream> | undefined): stream is CorkableStream {
  return typeof stream?.cork === 'function' && typeof stream.uncork === 'function' && typeof stream.write === 'function';
}
