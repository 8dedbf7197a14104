// Latency bookkeeping of the load test. Every sample is kept (a few per virtual user, so 10,000
// users are well under a megabyte), which makes percentiles exact instead of bucket-rounded; the
// report also carries a log-scale histogram for the HTML charts.

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LatencyHistogram {
  /** Upper bound of each bucket in ms, 0.1 ms to 100 s in 1-2-5 steps. */
  upperBoundsMs: number[];
  counts: number[];
  /** Samples above the last bound. */
  overflow: number;
}

export interface LatencyRecorder {
  record(ms: number): void;
  summary(): LatencySummary;
  histogram(): LatencyHistogram;
}

const BUCKET_BOUNDS_MS = [-1, 0, 1, 2, 3, 4, 5].flatMap((exponent) => [1, 2, 5].map((step) => step * 10 ** exponent));

/** Nearest-rank percentile of an ascending array; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function createLatencyRecorder(): LatencyRecorder {
  let samples = new Float64Array(1024);
  let count = 0;
  const sorted = () => samples.slice(0, count).sort();
  return {
    record(ms) {
      if (count === samples.length) {
        const grown = new Float64Array(samples.length * 2);
        grown.set(samples);
        samples = grown;
      }
      samples[count++] = ms;
    },
    summary() {
      const values = sorted();
      let total = 0;
      for (const value of values) total += value;
      return {
        count,
        meanMs: count === 0 ? 0 : total / count,
        p50Ms: percentile(values, 50),
        p95Ms: percentile(values, 95),
        p99Ms: percentile(values, 99),
        maxMs: count === 0 ? 0 : values[count - 1]!,
      };
    },
    histogram() {
      const counts = new Array<number>(BUCKET_BOUNDS_MS.length).fill(0);
      let overflow = 0;
      for (let i = 0; i < count; i++) {
        const bucket = BUCKET_BOUNDS_MS.findIndex((bound) => samples[i]! <= bound);
        if (bucket === -1) overflow++;
        else counts[bucket]!++;
      }
      return { upperBoundsMs: [...BUCKET_BOUNDS_MS], counts, overflow };
    },
  };
}

/** Latency recorders by name, created on first use and reported in first-use order. */
export function createLatencyBook() {
  const recorders = new Map<string, LatencyRecorder>();
  const get = (name: string) => {
    let recorder = recorders.get(name);
    if (!recorder) recorders.set(name, (recorder = createLatencyRecorder()));
    return recorder;
  };
  return {
    record: (name: string, ms: number) => get(name).record(ms),
    entries: () => [...recorders.entries()],
  };
}

export type LatencyBook = ReturnType<typeof createLatencyBook>;
