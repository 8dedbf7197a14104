// runLoadTest: the whole LoadTest5 scenario against a running server, shared by the CLI
// (src/tools/loadtest.ts) and the CI test. Discover the target through the API, run N virtual
// users with bounded concurrency, then audit what PostgreSQL and the event stream say.

import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { connectRedis, createRedisClient, describeRedis, type RedisNode } from "../platform/redis/client.js";
import { createHttp2Clients } from "./clients.js";
import type { Arrival } from "./arrival.js";
import { auditRun } from "./audit.js";
import { discoverTarget } from "./catalog-discovery.js";
import { scheduleFaults, type Fault, type FaultRecord } from "./faults.js";
import { buildReport, type LoadTestReport } from "./report.js";
import { createRunStats, startTimelineSampler, type RunStats, type StageCounts, type TimePoint } from "./run-stats.js";
import { startServerGauge, type ServerGauge } from "./server-gauge.js";
import { createRetryBudget } from "./retry-budget.js";
import { sleep } from "./rpc-call.js";
import { runVirtualUser, type Clients, type SeatPick, type UserPlan } from "./virtual-user.js";
import type { RecordedWaits } from "./wait-accuracy.js";

export interface LoadTestOptions {
  /** gRPC address, host:port. */
  target: string;
  users: number;
  /** Users in flight at once; the rest wait to start (closed arrival only). */
  concurrency: number;
  /** How users arrive (arrival.ts); closed by default. */
  arrival?: Arrival;
  /** Users the CLI ran on another concert first (--warm-up), for the report's header. */
  warmUpUsers?: number;
  /** Default: the first concert ListConcerts returns. */
  concertId?: string;
  /** Default: the concert's first schedule. */
  scheduleId?: string;
  seatPick: SeatPick;
  /** Extra seats tried after a collision (retry-another-seat only). */
  seatRetries: number;
  rpcTimeoutMs: number;
  /** The whole run, discovery and users; the audit runs afterwards either way. */
  timeoutMs: number;
  /** gRPC connections the users are spread over. */
  connections: number;
  /** The server's MAX_ACTIVE_USERS, which the audit checks admissions against. */
  maxActiveUsers: number;
  databaseUrl: string;
  redisUrl: string;
  /** The server's REDIS_CLUSTER_NODES, when it runs on a Redis Cluster: the gauge and the audit read through a cluster client. */
  redisClusterNodes?: readonly RedisNode[];
  redisKeyPrefix: string;
  /** Short id in every user id (lt-<runId>-<n>); random by default. */
  runId?: string;
  /** Skip the audit (nothing is read from PostgreSQL or Redis). */
  skipAudit?: boolean;
  /** Injected while the users run, timed from their start (see faults.ts). */
  faults?: readonly Fault[];
  /** Called once a second while users run. */
  onProgress?: (counts: Readonly<StageCounts>, point: TimePoint) => void;
  /** Phase messages ("seats found", "auditing"). */
  log?: (line: string) => void;
  /** Gets every user's wait answers once the users are done (--trace-estimates: replayed against the server's trace). */
  onWaits?: (recorded: RecordedWaits) => void;
}

export type { LoadTestReport };

/** Retries the users may add: a fifth of the calls of the last 10 s, plus ten a second (an outage still gets retried). */
const RETRY_BUDGET = { ratio: 0.2, floorPerSecond: 10, windowMs: 10_000 };

async function connectGauge(
  options: LoadTestOptions,
  concertId: string,
): Promise<{ gauge?: ServerGauge; close(): void }> {
  if (options.skipAudit) return { close() {} };
  const redis = createRedisClient({
    url: options.redisUrl,
    clusterNodes: options.redisClusterNodes,
    name: "loadtest-gauge",
    commandTimeoutMs: 2000,
  });
  try {
    await connectRedis(redis, describeRedis(options.redisUrl, options.redisClusterNodes));
  } catch (error) {
    options.log?.(`server gauge off: ${(error as Error).message}`);
    return { close() {} };
  }
  const gauge = startServerGauge(redis, options.redisKeyPrefix, concertId);
  return {
    gauge,
    close() {
      gauge.stop();
      redis.disconnect();
    },
  };
}

async function runUsers(
  stats: RunStats,
  signal: AbortSignal,
  options: LoadTestOptions,
  pool: Clients[],
  plan: UserPlan,
  userPrefix: string,
): Promise<void> {
  const retryBudget = createRetryBudget({ ...RETRY_BUDGET, sleep });
  const arrival = options.arrival ?? { kind: "closed" };
  const started = performance.now();
  const context = {
    stats,
    rpcTimeoutMs: options.rpcTimeoutMs,
    signal,
    retryBudget,
    // A ramp is a crowd spread out: its joins are timed from its first arrival too.
    ...(arrival.kind !== "closed" && { burstStartedAt: started }),
  };
  if (arrival.kind !== "closed") {
    const spacingMs = arrival.kind === "ramp" ? arrival.rampMs / options.users : 0;
    const users: Promise<unknown>[] = [];
    for (let index = 0; index < options.users && !signal.aborted; index++) {
      const dueMs = started + index * spacingMs;
      // Timers fire at most every millisecond or so: start everyone already due in one go.
      if (dueMs > performance.now()) await sleep(dueMs - performance.now(), signal);
      users.push(runVirtualUser(context, pool[index % pool.length]!, plan, `${userPrefix}${index}`));
    }
    await Promise.all(users);
    stats.counts.retriesHeldByBudget = retryBudget.delayed;
    return;
  }
  let next = 0;
  const lane = async () => {
    while (next < options.users && !signal.aborted) {
      const index = next++;
      await runVirtualUser(context, pool[index % pool.length]!, plan, `${userPrefix}${index}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.users) }, lane));
  stats.counts.retriesHeldByBudget = retryBudget.delayed;
}

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestReport> {
  const log = options.log ?? (() => {});
  const runId = options.runId ?? randomBytes(3).toString("hex");
  const userPrefix = `lt-${runId}-`;
  const startedAt = new Date();
  const overall = AbortSignal.timeout(options.timeoutMs);
  // Every user in flight listens to it (calls, backoff sleeps, streams).
  setMaxListeners(0, overall);
  const clients = createHttp2Clients(options.target, options.connections);
  try {
    const scoutStats = createRunStats();
    const target = await discoverTarget(
      { stats: scoutStats, rpcTimeoutMs: options.rpcTimeoutMs, signal: overall },
      clients.pool[0]!,
      {
        concertId: options.concertId,
        scheduleId: options.scheduleId,
        scoutUserId: `${userPrefix}scout`,
      },
    );
    const topUpMinor = target.seats.reduce((max, seat) => (seat.priceMinor > max ? seat.priceMinor : max), 0n);
    log(
      `run ${runId}: concert ${target.concertId}, schedule ${target.scheduleId}: ${target.seats.length} of ${target.totalSeats} seats available; ${options.users} users`,
    );

    const plan: UserPlan = { ...target, topUpMinor, seatPick: options.seatPick, seatRetries: options.seatRetries };
    const stats = createRunStats({ keepWaits: options.onWaits !== undefined });
    const server = await connectGauge(options, target.concertId);
    const usersStarted = performance.now();
    const loopAtStart = performance.eventLoopUtilization();
    const sampler = startTimelineSampler(stats, {
      startedAt: usersStarted,
      intervalMs: 1000,
      server: server.gauge?.latest,
      onSample: (point) => options.onProgress?.(stats.counts, point),
    });
    const faultSchedule = scheduleFaults(options.faults ?? [], stats.counts, options.users, usersStarted);
    let faults: FaultRecord[];
    try {
      await runUsers(stats, overall, options, clients.pool, plan, userPrefix);
    } finally {
      // An outage still under way ends as planned before the audit reads the stores.
      faults = await faultSchedule.finish();
      sampler.stop();
      server.close();
    }
    for (const fault of faults) log(`fault ${fault.spec}: ${fault.notes.join("; ")}`);
    const usersWallMs = performance.now() - usersStarted;
    const recordedWaits = stats.waitAccuracy.recorded(usersWallMs);
    if (recordedWaits) options.onWaits?.(recordedWaits);
    // Whether the users ran out of time; the audit after them has its own time limits.
    const timedOut = overall.aborted;
    // Busy share of this thread's event loop: near 1 would mean the generator, not the server, set the pace.
    const generatorLoopUtilization = performance.eventLoopUtilization(loopAtStart).utilization;
    clients.close();

    let audit;
    if (!options.skipAudit) {
      log("auditing PostgreSQL and the event stream…");
      audit = await auditRun({
        databaseUrl: options.databaseUrl,
        redisUrl: options.redisUrl,
        redisClusterNodes: options.redisClusterNodes,
        redisKeyPrefix: options.redisKeyPrefix,
        userPrefix,
        concertId: target.concertId,
        scheduleId: target.scheduleId,
        cap: options.maxActiveUsers,
        runStartedAt: startedAt,
        acknowledged: {
          toppedUpMinor: stats.toppedUpMinor,
          payments: stats.counts.paid,
          paidMinor: stats.paidMinor,
          ambiguousMutations: stats.ambiguousMutations,
        },
        publishWaitMs: 60_000,
        activatedUsers: stats.counts.activated,
        clientActiveSpans: stats.activeSpans,
        serverMaxActiveSampled: server.gauge?.maxActive(),
        log,
      });
    }
    return buildReport({
      options,
      runId,
      userPrefix,
      startedAt,
      usersWallMs,
      generatorLoopUtilization,
      totalMs: Date.now() - startedAt.getTime(),
      timedOut,
      target,
      topUpMinor,
      stats,
      serverMaxActive: server.gauge?.maxActive(),
      faults,
      audit,
    });
  } finally {
    clients.close();
  }
}
