// The load driver every suite uses: `concurrency` callers each run op(0), op(1), … back to back
// (a closed loop: a new call starts when one ends) until the time is up or `limit` calls started.

import { percentile } from "./stats.js";

export interface ClosedLoopOptions {
  concurrency: number;
  durationMs: number;
  op: (i: number) => Promise<unknown>;
  /** Calls to start at most (e.g. the number of prepared holds). */
  limit?: number;
  /** Errors the workload expects (a lost seat race): counted as refused, not as errors. */
  isRefusal?: (error: unknown) => boolean;
}

export interface ClosedLoopResult {
  /** Calls that ended, succeeded or not, per second of the loop. */
  callsPerSec: number;
  /** Succeeded calls per second. */
  okPerSec: number;
  /** Latency of every call that ended (ms), ascending. */
  latencies: number[];
  p50Ms: number;
  p99Ms: number;
  ok: number;
  refused: number;
  errors: number;
  firstError?: unknown;
  /** This process's CPU time (user + system, µs) per call. */
  cpuUsPerCall: number;
}

export async function closedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const { concurrency, durationMs, op, limit = Infinity, isRefusal = () => false } = options;
  const latencies: number[] = [];
  let ok = 0;
  let refused = 0;
  let errors = 0;
  let firstError: unknown;
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end && next < limit) {
        const i = next++;
        const t0 = performance.now();
        try {
          await op(i);
          ok++;
        } catch (error) {
          if (isRefusal(error)) refused++;
          else {
            errors++;
            firstError ??= error;
          }
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return {
    callsPerSec: latencies.length / seconds,
    okPerSec: ok / seconds,
    latencies,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    ok,
    refused,
    errors,
    firstError,
    cpuUsPerCall: (used.user + used.system) / Math.max(latencies.length, 1),
  };
}
