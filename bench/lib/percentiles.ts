/** p50/p99/p999 of latency samples in ms (sorted copy; the benches keep at most a few million samples). */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarize(samples: Float64Array): LatencySummary {
  if (samples.length === 0) return { count: 0, p50: NaN, p99: NaN, p999: NaN, max: NaN };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sorted[sorted.length - 1]! };
}

/** A growable buffer of samples, capped so a long closed-loop run cannot exhaust memory. */
export class SampleBuffer {
  private data = new Float64Array(1 << 16);
  length = 0;
  constructor(private readonly cap = 4_000_000) {}
  push(value: number): void {
    if (this.length === this.data.length) {
      if (this.length >= this.cap) return;
      const bigger = new Float64Array(Math.min(this.cap, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }
  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
  clear(): void {
    this.length = 0;
  }
}

/**
 * What a load process counts: every arrival (the closed loop's progress) and, inside the measured window
 * (begin .. end), how many arrived and their latencies.
 */
export class LatencyRecorder {
  received = 0;
  private measuring = false;
  private measured = 0;
  private readonly samples = new SampleBuffer();

  /** Counts one arrival; true inside the window, where the caller passes its latency to sample(). */
  arrive(): boolean {
    this.received += 1;
    if (this.measuring) this.measured += 1;
    return this.measuring;
  }

  sample(latencyMs: number): void {
    this.samples.push(latencyMs);
  }

  begin(): void {
    this.samples.clear();
    this.measured = 0;
    this.measuring = true;
  }

  end(): { received: number; latenciesMs: Float64Array } {
    this.measuring = false;
    return { received: this.measured, latenciesMs: this.samples.values().slice() };
  }
}

/** Wall-clock ms with sub-ms resolution, comparable across processes on one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

/** The publisher's timestamp in a bench message body: `..."ts":<ms>}}`. Cheaper than JSON.parse. */
export function timestampOf(body: string): number {
  const at = body.lastIndexOf('"ts":');
  return at < 0 ? NaN : Number.parseFloat(body.slice(at + 5));
}
