import type { Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, type MetricObjectWithValues, type MetricValue, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * /metrics with several workers. A scrape reaches one worker (the primary hands connections round-robin),
 * so a worker's own series alone would change from scrape to scrape. Instead the worker asks the primary,
 * which collects every live worker's registry over IPC and answers with all of them, each series labelled
 * `worker` ("1".."n", and "primary" for the primary's own), so one scrape through the shared port sees the
 * whole machine and `sum without (worker)` gives the totals.
 */

type Json = Array<MetricObjectWithValues<MetricValue<string>>>;
type Message =
  | { type: 'switchboard:metrics-want'; id: number }
  | { type: 'switchboard:metrics-collect'; id: number }
  | { type: 'switchboard:metrics-part'; id: number; metrics: Json }
  | { type: 'switchboard:metrics-text'; id: number; text: string; contentType: string };

const isMessage = (m: unknown): m is Message =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('switchboard:metrics-');

/** The primary's own series: worker restarts and the primary process itself. */
export class PrimaryMetrics {
  readonly registry = new Registry();
  readonly restarts = new Counter({
    name: 'switchboard_worker_restarts_total',
    help: 'Workers the primary started again after they exited, by worker',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });
  readonly workersLive = new Gauge({
    name: 'switchboard_workers_live',
    help: 'Worker processes running, as the primary sees them',
    registers: [this.registry],
  });
  readonly workersListening = new Gauge({
    name: 'switchboard_workers_listening',
    help: 'Worker processes that finished starting and accept connections',
    registers: [this.registry],
  });

  constructor() {
    this.registry.setDefaultLabels({ worker: 'primary' });
    collectDefaultMetrics({ register: this.registry });
  }
}

/** Primary side: answers a worker's request with every worker's series and its own. */
export class ClusterMetricsCollector {
  private nextId = 1;
  private readonly pending = new Map<number, { parts: Json[]; waiting: Set<number>; done: () => void }>();

  constructor(
    private readonly own: Registry,
    private readonly workers: () => Worker[],
    private readonly timeoutMs = 2_000,
  ) {}

  /** Feed every message a worker sends (cluster 'message'); others are ignored. */
  onMessage(from: Worker, message: unknown): void {
    if (!isMessage(message)) return;
    if (message.type === 'switchboard:metrics-want') void this.answer(from, message.id);
    if (message.type === 'switchboard:metrics-part') {
      const collecting = this.pending.get(message.id);
      if (!collecting || !collecting.waiting.delete(from.id)) return;
      collecting.parts.push(message.metrics);
      if (collecting.waiting.size === 0) collecting.done();
    }
  }

  private async answer(to: Worker, requestId: number): Promise<void> {
    const id = this.nextId++;
    const live = this.workers().filter((w) => w.isConnected());
    const parts: Json[] = [];
    // A worker that is starting or dying may not answer: the scrape goes out without it rather than hang.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.timeoutMs);
      this.pending.set(id, { parts, waiting: new Set(live.map((w) => w.id)), done: () => (clearTimeout(timer), resolve()) });
      for (const w of live) w.send({ type: 'switchboard:metrics-collect', id } satisfies Message);
      if (live.length === 0) resolve();
    });
    this.pending.delete(id);
    const merged = AggregatorRegistry.aggregate([...parts, (await this.own.getMetricsAsJSON()) as Json]);
    if (to.isConnected()) to.send({ type: 'switchboard:metrics-text', id: requestId, text: await merged.metrics(), contentType: merged.contentType } satisfies Message);
  }
}

/** Worker side: hands its registry to the primary on request, and asks the primary for the whole view. */
export class WorkerMetricsLink {
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: { text: string; contentType: string }) => void>();

  constructor(
    private readonly registry: Registry,
    private readonly timeoutMs = 5_000,
  ) {
    process.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.type === 'switchboard:metrics-collect') {
        void this.registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: 'switchboard:metrics-part', id: message.id, metrics } satisfies Message));
      } else if (message.type === 'switchboard:metrics-text') {
        this.waiting.get(message.id)?.({ text: message.text, contentType: message.contentType });
        this.waiting.delete(message.id);
      }
    });
  }

  /** Every worker's series and the primary's, as Prometheus text. Rejects if the primary does not answer. */
  cluster(): Promise<{ text: string; contentType: string }> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('the primary did not answer the metrics request'));
      }, this.timeoutMs);
      this.waiting.set(id, (answer) => (clearTimeout(timer), resolve(answer)));
      process.send?.({ type: 'switchboard:metrics-want', id } satisfies Message);
    });
  }
}
