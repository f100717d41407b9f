import type { Clock } from '../core/clock.js';
import type { LiveSnapshot } from '../protocol/live-snapshot.js';
import { bucketDelta, histogramQuantile, type Bucket } from './histogram-quantile.js';

/** Cumulative values read from the metrics at one instant. */
export interface Reading {
  /** Open sockets by channel (a gauge). */
  sockets: Record<string, number>;
  /** Counters since start. */
  messagesIn: number;
  messagesOut: number;
  execs: number;
  /** The delivery latency histogram's cumulative buckets, in seconds. */
  latency: readonly Bucket[];
}

interface Point {
  t: number;
  sockets: Record<string, number>;
  messagesIn: number;
  messagesOut: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  execs: number;
}

/**
 * Turns successive readings into per-interval points and keeps the last `points` of them. A counter that
 * went down (the registry was reset) counts as a restart from zero rather than a negative rate.
 */
export class LiveSeries {
  private readonly points: Point[] = [];
  private previous: { at: number; reading: Reading } | undefined;

  constructor(
    readonly intervalMs: number,
    private readonly capacity: number,
  ) {}

  record(at: number, reading: Reading): void {
    const previous = this.previous;
    this.previous = { at, reading };
    if (!previous || at <= previous.at) return;
    const seconds = (at - previous.at) / 1000;
    const rate = (now: number, before: number) => (now >= before ? now - before : now) / seconds;
    const latency = bucketDelta(reading.latency, previous.reading.latency);
    const ms = (q: number) => {
      const seconds = histogramQuantile(q, latency);
      return seconds === null ? null : seconds * 1000;
    };
    this.points.push({
      t: at / 1000,
      sockets: { ...reading.sockets },
      messagesIn: rate(reading.messagesIn, previous.reading.messagesIn),
      messagesOut: rate(reading.messagesOut, previous.reading.messagesOut),
      latencyP50Ms: ms(0.5),
      latencyP99Ms: ms(0.99),
      execs: rate(reading.execs, previous.reading.execs),
    });
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity);
  }

  snapshot(): LiveSnapshot {
    const channels = [...new Set(this.points.flatMap((p) => Object.keys(p.sockets)))].sort();
    return {
      intervalMs: this.intervalMs,
      t: this.points.map((p) => p.t),
      sockets: Object.fromEntries(channels.map((c) => [c, this.points.map((p) => p.sockets[c] ?? 0)])),
      messagesIn: this.points.map((p) => p.messagesIn),
      messagesOut: this.points.map((p) => p.messagesOut),
      latencyP50Ms: this.points.map((p) => p.latencyP50Ms),
      latencyP99Ms: this.points.map((p) => p.latencyP99Ms),
      execs: this.points.map((p) => p.execs),
    };
  }
}

/**
 * Reads every `intervalMs` into a LiveSeries covering `windowMs`, from start() to stop(); the first reading
 * is the baseline, so the first point appears one interval after the start. Readings never overlap: the
 * next is scheduled once the previous one is recorded.
 */
export class LiveSampler {
  readonly series: LiveSeries;
  private running = false;
  /** Bumped by every start, so a reading still in flight from before a stop and start ends its loop. */
  private generation = 0;
  private cancel: () => void = () => {};

  constructor(
    private readonly options: {
      clock: Clock;
      intervalMs: number;
      windowMs: number;
      read: () => Promise<Reading>;
      onError: (err: unknown) => void;
    },
  ) {
    this.series = new LiveSeries(options.intervalMs, Math.max(1, Math.ceil(options.windowMs / options.intervalMs)));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.tick(++this.generation);
  }

  stop(): void {
    this.running = false;
    this.cancel();
  }

  private async tick(generation: number): Promise<void> {
    const { clock, intervalMs, read, onError } = this.options;
    const current = () => this.running && generation === this.generation;
    try {
      const reading = await read();
      if (current()) this.series.record(clock.now(), reading);
    } catch (err) {
      onError(err);
    }
    if (current()) this.cancel = clock.schedule(intervalMs, () => void this.tick(generation));
  }
}
