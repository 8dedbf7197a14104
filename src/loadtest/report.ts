// The load-test report: one plain JSON-safe object (money as decimal strings) that the text
// table, --json and --html are all rendered from.

import { formatArrival, type Arrival } from "./arrival.js";
import type { AuditResult } from "./audit.js";
import type { Target } from "./catalog-discovery.js";
import type { FaultRecord } from "./faults.js";
import type { LatencyHistogram, LatencySummary } from "./latency-stats.js";
import type { RunStats, TimePoint } from "./run-stats.js";
import type { SeatPick } from "./virtual-user.js";
import type { WaitAccuracy } from "./wait-accuracy.js";

export interface LoadTestReport {
  runId: string;
  /** Every virtual user's id starts with this. */
  userPrefix: string;
  target: string;
  startedAt: string;
  /** From the first user starting to the last one finishing. */
  usersWallMs: number;
  /** Discovery, users and audit. */
  totalMs: number;
  /** Busy share (0..1) of the load generator's event loop while users ran. */
  generatorLoopUtilization: number;
  timedOut: boolean;
  settings: {
    users: number;
    concurrency: number;
    /** closed, burst or ramp:<seconds>. */
    arrival: string;
    /** Users run on another concert before this run (--warm-up); 0: none. */
    warmUpUsers: number;
    connections: number;
    seatPick: string;
    seatRetries: number;
    rpcTimeoutMs: number;
    timeoutMs: number;
    cap: number;
    concertId: string;
    scheduleId: string;
    totalSeats: number;
    seatsAvailable: number;
    topUpMinor: string;
  };
  outcome: {
    usersStarted: number;
    tokensIssued: number;
    tokensActivated: number;
    toppedUp: number;
    holdsWon: number;
    lostToCollision: number;
    collisions: number;
    paymentsOk: number;
    /** Of paymentsOk: answers lost, the payment found in the ledger afterwards. */
    paymentsConfirmedPerLedger: number;
    /** Users who won a hold but whose payment did not succeed. */
    paymentsFailed: number;
    usersFailed: number;
    failuresByStage: Record<string, number>;
    streamResumes: number;
    rejoins: number;
    retries: number;
    retriesHeldByBudget: number;
    ambiguousMutations: number;
    toppedUpMinor: string;
    paidMinor: string;
  };
  /** "RPC CODE [REASON]" → occurrences, most frequent first. */
  errors: Record<string, number>;
  /** "RPC CODE [REASON]" → the first message seen. */
  errorMessages: Record<string, string>;
  latency: Record<string, LatencySummary & { histogram: LatencyHistogram }>;
  /** Estimated vs actual wait of the users who waited. */
  waitAccuracy: WaitAccuracy;
  timeline: TimePoint[];
  /** Largest active-set size sampled in Redis during the run. */
  serverMaxActiveSampled?: number;
  /** --fault: what was broken when, and how the users stood at that moment. */
  faults?: FaultRecord[];
  audit?: AuditResult;
  /** No audit check failed, and every --fault was injected (and, for an outage, ended). */
  passed: boolean;
}

/**
 * The run's settings a report restates. runLoadTest's options have them; declared here so the
 * report does not import its runner.
 */
export interface ReportedOptions {
  target: string;
  users: number;
  concurrency: number;
  arrival?: Arrival;
  warmUpUsers?: number;
  connections: number;
  seatPick: SeatPick;
  seatRetries: number;
  rpcTimeoutMs: number;
  timeoutMs: number;
  maxActiveUsers: number;
}

export interface ReportInput {
  options: ReportedOptions;
  runId: string;
  userPrefix: string;
  startedAt: Date;
  usersWallMs: number;
  generatorLoopUtilization: number;
  totalMs: number;
  timedOut: boolean;
  target: Target;
  topUpMinor: bigint;
  stats: RunStats;
  serverMaxActive: number | undefined;
  faults: FaultRecord[];
  audit: AuditResult | undefined;
}

export function buildReport(input: ReportInput): LoadTestReport {
  const { options, stats, target } = input;
  const { counts } = stats;
  const latency: LoadTestReport["latency"] = {};
  for (const [name, recorder] of stats.latency.entries())
    latency[name] = { ...recorder.summary(), histogram: recorder.histogram() };
  return {
    runId: input.runId,
    userPrefix: input.userPrefix,
    target: options.target,
    startedAt: input.startedAt.toISOString(),
    usersWallMs: Math.round(input.usersWallMs),
    totalMs: Math.round(input.totalMs),
    generatorLoopUtilization: Math.round(input.generatorLoopUtilization * 1000) / 1000,
    timedOut: input.timedOut,
    settings: {
      users: options.users,
      concurrency: options.concurrency,
      arrival: formatArrival(options.arrival),
      warmUpUsers: options.warmUpUsers ?? 0,
      connections: options.connections,
      seatPick: options.seatPick,
      seatRetries: options.seatPick === "random-once" ? 0 : options.seatRetries,
      rpcTimeoutMs: options.rpcTimeoutMs,
      timeoutMs: options.timeoutMs,
      cap: options.maxActiveUsers,
      concertId: target.concertId,
      scheduleId: target.scheduleId,
      totalSeats: target.totalSeats,
      seatsAvailable: target.seats.length,
      topUpMinor: input.topUpMinor.toString(),
    },
    outcome: {
      usersStarted: counts.started,
      tokensIssued: counts.joined,
      tokensActivated: counts.activated,
      toppedUp: counts.toppedUp,
      holdsWon: counts.held,
      lostToCollision: counts.lost,
      collisions: counts.collisions,
      paymentsOk: counts.paid,
      paymentsConfirmedPerLedger: counts.paidPerLedger,
      paymentsFailed: counts.held - counts.paid,
      usersFailed: counts.failed,
      failuresByStage: Object.fromEntries(stats.failuresByStage),
      streamResumes: counts.reconnects,
      rejoins: counts.rejoins,
      retries: counts.retries,
      retriesHeldByBudget: counts.retriesHeldByBudget,
      ambiguousMutations: stats.ambiguousMutations,
      toppedUpMinor: stats.toppedUpMinor.toString(),
      paidMinor: stats.paidMinor.toString(),
    },
    errors: Object.fromEntries([...stats.errors].sort((a, b) => b[1] - a[1])),
    errorMessages: Object.fromEntries(stats.errorMessages),
    latency,
    waitAccuracy: stats.waitAccuracy.summary(input.usersWallMs),
    timeline: stats.timeline,
    ...(input.serverMaxActive !== undefined && { serverMaxActiveSampled: input.serverMaxActive }),
    ...(input.faults.length > 0 && { faults: input.faults }),
    ...(input.audit && { audit: input.audit }),
    passed: (input.audit?.passed ?? true) && input.faults.every((fault) => fault.complete),
  };
}
