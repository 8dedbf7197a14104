// What the virtual users count while they run: stage counters and gauges, errors by RPC, code
// and reason, the money the server acknowledged, and a once-a-second time series of the gauges
// and rates for the charts.

import { createLatencyBook, type LatencyBook } from "./latency-stats.js";
import { createWaitAccuracyBook, type WaitAccuracyBook } from "./wait-accuracy.js";

export interface StageCounts {
  /** Users whose flow has started (bounded by --concurrency). */
  started: number;
  /** Users holding a queue token (JoinQueue answered). */
  joined: number;
  /** Gauge: users with a token that is not ACTIVE yet. */
  waiting: number;
  /** Gauge: users admitted and not finished. */
  active: number;
  /** Users that saw their token ACTIVE. */
  activated: number;
  toppedUp: number;
  /** Holds won. */
  held: number;
  /** Users that ended without a seat because every seat they tried was taken. */
  lost: number;
  /** SEAT_UNAVAILABLE answers, retried ones included. */
  collisions: number;
  paid: number;
  /** Payments whose answer was lost, found in the ledger afterwards (included in paid). */
  paidPerLedger: number;
  /** Users that ended on an error at any stage. */
  failed: number;
  finished: number;
  /** WatchQueue streams resumed with the same token. */
  reconnects: number;
  /** JoinQueue repeated after the token expired while waiting. */
  rejoins: number;
  /** Unary calls repeated after a transient error (same idempotency key). */
  retries: number;
  /** Of those, the ones that waited for the run's retry budget (retry-budget.ts). */
  retriesHeldByBudget: number;
}

export interface TimePoint {
  /** Seconds since the users started. */
  t: number;
  waiting: number;
  active: number;
  /** Per second, over the second that ended at t. */
  admissions: number;
  holds: number;
  payments: number;
  joins: number;
  /** The server's waiting and active set sizes (Redis), when it could be read. */
  serverWaiting?: number;
  serverActive?: number;
}

export interface RunStats {
  counts: StageCounts;
  latency: LatencyBook;
  /** "RPC CODE REASON" → occurrences, transient ones included. */
  errors: Map<string, number>;
  /** "RPC CODE REASON" → the first message seen, for diagnosis. */
  errorMessages: Map<string, string>;
  /** Stage → users that ended failed there. */
  failuresByStage: Map<string, number>;
  /** Sum of top-ups the server acknowledged. */
  toppedUpMinor: bigint;
  /** Sum of payments the server acknowledged. */
  paidMinor: bigint;
  /** Calls whose outcome is unknown (deadline or connection lost on a mutation that was not retried to an answer). */
  ambiguousMutations: number;
  /**
   * Per admitted user, epoch ms from receiving ACTIVE to sending the last call the token guard
   * let through: a sub-interval of the server-side active interval, so their overlap is a lower
   * bound of how many users were active at once.
   */
  activeSpans: { from_ms: number; to_ms: number }[];
  /** Every wait estimate a waiting user was told, against the wait it had. */
  waitAccuracy: WaitAccuracyBook;
  timeline: TimePoint[];
}

/** `keepWaits`: the wait book keeps every user's answers (the load test's --trace-estimates). */
export function createRunStats(options: { keepWaits?: boolean } = {}): RunStats {
  return {
    counts: {
      started: 0,
      joined: 0,
      waiting: 0,
      active: 0,
      activated: 0,
      toppedUp: 0,
      held: 0,
      lost: 0,
      collisions: 0,
      paid: 0,
      paidPerLedger: 0,
      failed: 0,
      finished: 0,
      reconnects: 0,
      rejoins: 0,
      retries: 0,
      retriesHeldByBudget: 0,
    },
    latency: createLatencyBook(),
    errors: new Map(),
    errorMessages: new Map(),
    failuresByStage: new Map(),
    toppedUpMinor: 0n,
    paidMinor: 0n,
    ambiguousMutations: 0,
    activeSpans: [],
    waitAccuracy: createWaitAccuracyBook({ keep: options.keepWaits }),
    timeline: [],
  };
}

export function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export interface SamplerOptions {
  startedAt: number;
  intervalMs: number;
  server?: () => { waiting: number; active: number } | undefined;
  onSample?: (point: TimePoint) => void;
}

/** Appends a point to stats.timeline at once, every intervalMs, and once more on stop. */
export function startTimelineSampler(stats: RunStats, options: SamplerOptions): { stop(): void } {
  const { startedAt, intervalMs } = options;
  let last = { at: startedAt, activated: 0, held: 0, paid: 0, joined: 0 };
  const sample = () => {
    const now = performance.now();
    const { counts } = stats;
    const seconds = Math.max(now - last.at, 1) / 1000;
    const rate = (current: number, previous: number) => Math.round((current - previous) / seconds);
    const server = options.server?.();
    const point: TimePoint = {
      t: Math.round(now - startedAt) / 1000,
      waiting: counts.waiting,
      active: counts.active,
      admissions: rate(counts.activated, last.activated),
      holds: rate(counts.held, last.held),
      payments: rate(counts.paid, last.paid),
      joins: rate(counts.joined, last.joined),
      ...(server && { serverWaiting: server.waiting, serverActive: server.active }),
    };
    stats.timeline.push(point);
    options.onSample?.(point);
    last = { at: now, activated: counts.activated, held: counts.held, paid: counts.paid, joined: counts.joined };
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
    },
  };
}
