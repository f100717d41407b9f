import { writeHeapSnapshot } from 'node:v8';

/**
 * Loaded into a gateway process by the bench's `--heap-probe` (`node --expose-gc --import <this>`), outside
 * the gateway's own code. On SIGUSR2 it forces a full garbage collection, writes a heap snapshot into
 * HEAP_PROBE_DIR and prints one JSON line on stderr with the memory figures after that collection: what is
 * still retained, as opposed to RSS, which also counts heap the collector has not given back.
 */
const dir = process.env.HEAP_PROBE_DIR ?? '.';
let taken = 0;

process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    process.stderr.write('heap-probe: run with --expose-gc\n');
    return;
  }
  gc();
  const usage = process.memoryUsage();
  const file = writeHeapSnapshot(`${dir}/${process.env.NODE_ID ?? process.pid}-${taken++}.heapsnapshot`);
  process.stderr.write(`${JSON.stringify({ heapProbe: { file, ...usage } })}\n`);
});
