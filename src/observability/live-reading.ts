import type { Bucket } from './histogram-quantile.js';
import type { Reading } from './live-series.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * What the console's live charts need, read from the same prom-client metrics /metrics exports, so the
 * charts and a Prometheus scrape can never count differently.
 */
export async function readLiveMetrics(metrics: GatewayMetrics): Promise<Reading> {
  const [sockets, received, written, execs, latency] = await Promise.all([
    metrics.socketsOpen.get(),
    metrics.messagesReceived.get(),
    metrics.messagesWritten.get(),
    metrics.execs.get(),
    metrics.deliveryLatency.get(),
  ]);
  const sum = (values: ReadonlyArray<{ value: number }>) => values.reduce((total, v) => total + v.value, 0);
  const buckets: Bucket[] = latency.values
    .filter((v) => v.metricName?.endsWith('_bucket'))
    .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }));
  return {
    sockets: Object.fromEntries(sockets.values.map((v) => [String(v.labels.channel), v.value])),
    messagesIn: sum(received.values),
    messagesOut: sum(written.values),
    execs: sum(execs.values),
    latency: buckets,
  };
}
