// The waiting room as the rest of the application sees it: join, status, watch, leave, token
// validation and release, each served by Redis while it is healthy and by PostgreSQL, the record,
// while it is not (queue-mode.ts), plus the background admission loop.

import type { Registry } from "prom-client";
import type { Config } from "../config.js";
import { createBatcher } from "../platform/batcher.js";
import { startPeriodicTask, type PeriodicTask } from "../platform/periodic-task.js";
import type { ORM } from "../platform/db/orm.js";
import { DomainError } from "../platform/domain-error.js";
import type { Clock } from "../platform/clock.js";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis/client.js";
import { createAdmissionLoop, type AdmissionLoop } from "./admission-loop.js";
import { createJoinChecks } from "./join-checks.js";
import { createEndCommitter } from "./end-committer.js";
import { createJoinCommitter, joinRowOf } from "./join-committer.js";
import { createJoinRecheck } from "./join-recheck.js";
import { createPgQueue } from "./pg-queue.js";
import { createPrequeue, type Prequeue } from "./prequeue.js";
import { createQueueDb } from "./queue-db.js";
import { createQueueMetrics } from "./queue-metrics.js";
import { createQueueMode, type QueueMode } from "./queue-mode.js";
import { newQueueToken } from "./queue-token.js";
import { statusNow, type QueueStatus } from "./queue-status.js";
import { admissionRule, type AdmissionRule } from "./admission-rule.js";
import { fixedAdmissionSettings, type AdmissionSettings, type ConcertAdmission } from "./admission-settings.js";
import type { JoinReply } from "./queue-scripts.js";
import { createRedisQueue, type Validation } from "./redis-queue.js";
import { createWatchHub, type WatchUpdate } from "./watch-hub.js";
import { createLineMeter, type LineMeasures } from "./wait-estimate.js";
import type { EstimateTrace } from "./wait-estimate-trace.js";

/** What payment needs of the waiting room: give the slot back right after a successful payment. */
export interface QueueTokens {
  /**
   * Frees the token's active slot (or place) at once, like LeaveQueue; unknown tokens are ignored.
   * When it fails, the waiting room also tries again in the background until the token's TTL.
   */
  release(token: string): Promise<void>;
}

/** What the booking and wallet guard needs. */
export interface QueueTokenValidator {
  validate(token: string): Promise<Validation>;
}

export interface WaitingRoom extends QueueTokens, QueueTokenValidator {
  join(concertId: string, userId: string): Promise<QueueStatus>;
  status(token: string): Promise<QueueStatus>;
  watch(token: string, signal: AbortSignal): AsyncGenerator<WatchUpdate>;
  leave(token: string): Promise<QueueStatus>;
  /** The admission rule this waiting room applies by default (the environment's). */
  readonly rule: AdmissionRule;
  /** A concert's admission settings as of this process's last admission tick; wait estimates derive from them. */
  admissionOf(concertId: string): ConcertAdmission;
  /** Makes every process apply stored admission settings at its next tick (admission-settings.ts). */
  announceSettingsChange(): Promise<void>;
  /** What this process's admission ticks measured of a concert's line lately, for wait estimates. */
  lineMeasures(concertId: string): LineMeasures;
  /** Where every estimate told is recorded too, when the process was started with one. */
  readonly estimateTrace: EstimateTrace | undefined;
  /** SQL statements sent so far (queue_pg_statements_total); the benchmark reads it. */
  readonly pgStatements: number;
  readonly mode: QueueMode;
  readonly admission: AdmissionLoop;
  /** The sale-start prequeue of each concert (AdminService publishes its seed). */
  readonly prequeue: Prequeue;
  /**
   * Starts the admission loop (`admit`: processes serving QueueService run it), or else only its
   * store check, which a process that validates tokens for booking and payment needs as much:
   * it notices Redis back and fills it with what it missed.
   */
  start(options: { admit: boolean }): void;
  /** Stops the loops and writes pending joins; call after the servers stopped taking calls. */
  stop(): Promise<void>;
}

export type WaitingRoomConfig = Pick<
  Config,
  | "redisKeyPrefix"
  | "maxActiveUsers"
  | "admissionIntervalMs"
  | "activeTokenTtlSeconds"
  | "waitingTokenTtlSeconds"
  | "expectedSessionSeconds"
>;

/** Group commit window of JoinQueue. */
const JOIN_BATCH = { maxRows: 1000, maxDelayMs: 20 };
/**
 * A join whose PostgreSQL write ended longer than this after it was sent to Redis is checked in
 * Redis once more (join-recheck.ts): a rebuild of Redis (which reads PostgreSQL) may have run
 * without its row, and a rebuild reads PostgreSQL only this long after Redis was found behind, so
 * quicker joins cannot have missed one. Counted from before the Redis call, so a busy event loop
 * between the two writes cannot hide a slow one.
 */
const SLOW_JOIN_COMMIT_MS = 200;
/**
 * Silence after which a watcher gets a heartbeat at the next watch tick (at most a second later),
 * so the contract's "a heartbeat at least every 5 seconds" holds.
 */
const HEARTBEAT_MS = 4000;
/** A release that failed is tried again after this, doubling up to the max, until the token's TTL. */
const RELEASE_RETRY_FIRST_MS = 200;
const RELEASE_RETRY_MAX_MS = 5000;

const invalidToken = () => new DomainError("QUEUE_TOKEN_INVALID", "unknown queue token; join the queue for a new one");

export async function createWaitingRoom(deps: {
  orm: ORM;
  redis: RedisClient;
  config: WaitingRoomConfig;
  logger: Logger;
  registry: Registry;
  /** Per-concert settings from AdminService, given the environment's rule as their default. */
  admissionSettings?: (defaults: AdmissionRule) => AdmissionSettings;
  /** Decides whether a sale has opened (tests step it across an opening). */
  clock?: Clock;
  /** Gets what the wait estimates are computed from (the load test's --trace-estimates). */
  estimateTrace?: EstimateTrace;
}): Promise<WaitingRoom> {
  const { redis, config, logger, registry } = deps;
  const metrics = createQueueMetrics(registry);
  const db = await createQueueDb(deps.orm, () => metrics.statementSent());
  const pg = createPgQueue(db);
  const rule = admissionRule({
    maxActiveUsers: config.maxActiveUsers,
    activeTtlSeconds: config.activeTokenTtlSeconds,
    waitingTtlSeconds: config.waitingTokenTtlSeconds,
    intervalMs: config.admissionIntervalMs,
    expectedSessionSeconds: config.expectedSessionSeconds,
  });
  const redisQueue = createRedisQueue(redis, config.redisKeyPrefix);
  const prequeue = createPrequeue({ query: db.query, redis, keys: redisQueue.keys, clock: deps.clock });
  const settings = prequeue.gate(deps.admissionSettings?.(rule) ?? fixedAdmissionSettings(rule));
  const ends = createEndCommitter(db);
  const committer = createJoinCommitter({ db, ...JOIN_BATCH, onBatch: () => metrics.joinBatchFlushed() });
  const recheck = createJoinRecheck({ redisQueue, logger });
  // While Redis is down, joins are group-committed too: one transaction per concert per window.
  const fallbackJoins = createBatcher({
    maxItems: JOIN_BATCH.maxRows,
    maxDelayMs: JOIN_BATCH.maxDelayMs,
    run: pg.joinMany,
  });
  let modeCheck: PeriodicTask | undefined;
  const mode = createQueueMode({
    redis,
    redisQueue,
    db,
    logger,
    registry,
    rebuildDelayMs: SLOW_JOIN_COMMIT_MS,
  });
  await mode.check().catch((error: unknown) => logger.warn({ err: error }, "waiting room store check failed"));
  const meter = createLineMeter();
  const admission = createAdmissionLoop({
    mode,
    redisQueue,
    db,
    logger,
    rule,
    settings,
    onTick(tick) {
      const { cap, activeTtlMs } = settings.of(tick.concertId).rule;
      const sample = { ...tick, heldSlots: tick.active, cap, activeTtlMs };
      deps.estimateTrace?.({ kind: "tick", concertId: tick.concertId, sample });
      meter.observe(tick.concertId, sample);
      metrics.tick(tick, cap);
    },
    // A concert the step no longer went through has nobody left in line.
    onStepDone: (concertIds) => metrics.stepDone(concertIds),
  });
  const hub = createWatchHub({
    mode,
    redisQueue,
    pg,
    logger,
    viewOf: prequeue.viewOf,
    // An admission's expiry counts from its decision, by the concert's ACTIVE_TOKEN_TTL.
    onAdmissionsHeard(concertId, activeExpireMs, heardAtMs, users) {
      const decisionMs = activeExpireMs - settings.of(concertId).rule.activeTtlMs;
      deps.estimateTrace?.({ kind: "heard", concertId, decisionMs, heardAtMs, users });
      meter.heard(concertId, decisionMs, heardAtMs, users);
    },
    settings: {
      tickMs: Math.min(Math.max(config.admissionIntervalMs, 50), 1000),
      heartbeatMs: HEARTBEAT_MS,
      // At least three times per WAITING_TOKEN_TTL, so a user who keeps watching is never taken for gone.
      touchEveryMs: Math.min(5000, (config.waitingTokenTtlSeconds * 1000) / 3),
    },
  });
  metrics.watchStreams(() => hub.watchers);
  const joinChecks = createJoinChecks({ query: db.query, settings });

  async function status(token: string): Promise<QueueStatus> {
    // A token Redis does not know may be one it misses: the record says.
    const found = await mode.run(
      async () => (await redisQueue.status(token, true)) ?? pg.status(token),
      () => pg.status(token),
    );
    if (!found) throw invalidToken();
    return (await prequeue.viewOf(found.concertId))(found);
  }

  /** Joins of this process whose row is being committed, by token (a user's retry shares its token). */
  const commitsInFlight = new Map<string, number>();
  /** Whether the record has no row for the token; false when it cannot say. */
  const rowMissing = (token: string) =>
    pg.hasRow(token).then(
      (found) => !found,
      () => false,
    );

  /** The user's place in the concert's line while it is WAITING or ACTIVE, else undefined. */
  async function livePlace(concertId: string, userId: string): Promise<QueueStatus | undefined> {
    const found = await mode.run(
      async () => {
        const token = await redisQueue.liveToken(concertId, userId);
        return token === undefined ? undefined : redisQueue.status(token, true);
      },
      () => pg.livePlace(concertId, userId),
    );
    return found?.state === "WAITING" || found?.state === "ACTIVE" ? found : undefined;
  }

  /** PostgreSQL, the record, first: a slot it counts as taken is never given to two users. */
  function leave(token: string): Promise<QueueStatus | undefined> {
    return mode.run(
      async () => {
        await ends.commit(token);
        return (await redisQueue.leave(token)) ?? pg.status(token);
      },
      async () => {
        await pg.end(token);
        return pg.status(token);
      },
    );
  }

  // A slot given back must reach the record, or admission counts it taken until the token's TTL:
  // with a small cap, one PostgreSQL blip while users pay would stop the line for that long.
  let stopped = false;
  const retrying = new Set<string>();
  function retryRelease(token: string, delayMs: number, untilMs: number): void {
    if (stopped || retrying.has(token)) return;
    if (retrying.size >= 100_000 || Date.now() + delayMs > untilMs) {
      // Said once per token, so an operator can tell a short line of admissions from a bug.
      logger.warn(
        { token: `${token.slice(0, 8)}…`, retrying: retrying.size },
        "gave up giving a slot back after payment: it comes back when the token's ACTIVE_TOKEN_TTL runs out",
      );
      return;
    }
    retrying.add(token);
    setTimeout(() => {
      retrying.delete(token);
      if (stopped) return;
      leave(token).catch(() => retryRelease(token, Math.min(delayMs * 2, RELEASE_RETRY_MAX_MS), untilMs));
    }, delayMs).unref();
  }

  return {
    rule,
    // Nobody is admitted while Redis is down or being filled: the estimate says unknown meanwhile.
    admissionOf(concertId) {
      const admission = settings.of(concertId);
      if (mode.state === "redis" || admission.state !== "OPEN") return admission;
      return { ...admission, state: "PAUSED", reason: "the waiting room's store is recovering; every place is kept" };
    },
    announceSettingsChange: () => settings.announceChange(),
    lineMeasures: (concertId) => meter.measures(concertId),
    estimateTrace: deps.estimateTrace,
    get pgStatements() {
      return metrics.statements;
    },
    mode,
    admission,
    prequeue,

    async join(concertId, userId) {
      try {
        await joinChecks.check(concertId);
      } catch (error) {
        // JoinQueue is idempotent: a user already in line gets their place back from a CLOSED room too.
        const place =
          error instanceof DomainError && error.reason === "QUEUE_CLOSED" && (await livePlace(concertId, userId));
        if (!place) throw error;
        return (await prequeue.viewOf(concertId))(place);
      }
      const prequeueSeq = await prequeue.placeOf(concertId, userId);
      const view = await prequeue.viewOf(concertId);
      const [sentMs, freshToken] = [Date.now(), newQueueToken()];
      const result = await mode.run<{ reply?: JoinReply; status?: QueueStatus }>(
        async () => ({ reply: await redisQueue.join(concertId, userId, freshToken, prequeueSeq) }),
        async () => ({
          status: await fallbackJoins.submit({ concertId, userId, freshToken: newQueueToken(), prequeueSeq }),
        }),
      );
      if (!result.reply) return view(result.status!);
      const row = joinRowOf(concertId, userId, result.reply);
      const { token, seq, status: joined, readAtMs } = result.reply;
      const { state } = row;
      // Acknowledged only once PostgreSQL has the row: it must survive losing Redis.
      commitsInFlight.set(token, (commitsInFlight.get(token) ?? 0) + 1);
      await committer
        .commit(row)
        .catch(async (error: unknown) => {
          // A place with no row would stop admission at it (pg-admission.ts) until abandoned: the
          // place this join made is given back (an older place of the user was recorded before),
          // unless a retry of the user got the same token and may be answered with it, or the
          // row is there after all (a retry's commit, or this batch's INSERT before a later
          // statement failed). Only the record's "no such row" gives it back.
          if (token === freshToken && commitsInFlight.get(token) === 1 && (await rowMissing(token)))
            await redisQueue.leave(token).catch(() => undefined);
          throw error;
        })
        .finally(() => {
          const left = commitsInFlight.get(token)! - 1;
          if (left === 0) commitsInFlight.delete(token);
          else commitsInFlight.set(token, left);
        });
      if (Date.now() - sentMs > SLOW_JOIN_COMMIT_MS)
        await recheck.recheck(concertId, { token, userId, seq, state, activeExpireMs: joined.activeExpireMs });
      redisQueue.joinAnswered(token);
      return view(statusNow({ token, concertId, userId, ...joined }, readAtMs));
    },

    status,

    async *watch(token, signal) {
      const recent = redisQueue.recentJoinStatus(token);
      const first = recent ? (await prequeue.viewOf(recent.concertId))(recent) : await status(token);
      yield* hub.watch(first, signal);
    },

    async leave(token) {
      const left = await leave(token);
      if (!left) throw invalidToken();
      return left;
    },

    async release(token) {
      await leave(token).catch((error: unknown) => {
        retryRelease(token, RELEASE_RETRY_FIRST_MS, Date.now() + config.activeTokenTtlSeconds * 1000);
        throw error;
      });
    },

    validate(token) {
      return mode.run(
        async () => {
          const found = await redisQueue.validate(token);
          return found.kind === "unknown" ? pg.validate(token) : found;
        },
        () => pg.validate(token),
      );
    },

    start({ admit }) {
      if (admit) admission.start();
      else
        modeCheck = startPeriodicTask({
          name: "queue store check",
          intervalMs: config.admissionIntervalMs,
          run: async () => {
            await mode.check();
            return false;
          },
          logger,
        });
    },

    async stop() {
      stopped = true;
      await Promise.all([admission.stop(), modeCheck?.stop()]);
      await Promise.all([committer.drain(), fallbackJoins.drain(), ends.drain(), mode.release()]);
      await recheck.drain();
    },
  };
}
