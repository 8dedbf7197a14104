// Which store serves the waiting room, run as the state table of queue-store-states.ts: this
// file only observes (call failures, the admission tick's checks, a probe while on PostgreSQL),
// fires the table's events and carries out what entering a state means.
//
// One store for everyone, said by the store row (queue-store.ts): a process that leaves Redis
// sets it to PostgreSQL and every other process follows at its next tick, so the line keeps one
// order and every process knows every token. PostgreSQL admits whichever store serves, so the
// two can never admit past the cap between them. The way back fills Redis from PostgreSQL and
// flips the row in one transaction.

import { randomBytes } from "node:crypto";
import { Gauge, type Registry } from "prom-client";
import { UnavailableError } from "../platform/domain-error.js";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis/client.js";
import { isConnectivityError } from "../platform/rpc/error-mapping.js";
import { QUEUE_STATE_LOST } from "./queue-lua.js";
import { nextState, type StoreEvent, type StoreState } from "./queue-store-states.js";
import { createQueueStore, StoreMovedError } from "./queue-store.js";
import { isPostgresError, type QueueDb } from "./queue-db.js";
import type { RedisQueue } from "./redis-queue.js";

export type StoreMode = "redis" | "fallback" | "rebuilding";

/**
 * Command timeouts are evidence of a hung Redis only when they keep coming for this long, at
 * least MIN_TIMEOUTS of them, without one answer in between (guard silentTooLong). A failed
 * connection is evidence at once; a timeout alone may be our own starved event loop.
 */
const SILENT_TOO_LONG_MS = 5000;
const MIN_TIMEOUTS = 3;
/** Rows per MERGE script call, to keep each script short. */
const MERGE_CHUNK = 500;

const NOT_SERVING = new RegExp(`^(LOADING|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|${QUEUE_STATE_LOST})\\b`);

/**
 * Redis failures that mean "unreachable, not serving or lost its data", as opposed to a bug in a
 * command. A lost concert (a cluster node restarted empty) is handled like a lost Redis: the way
 * back fills it again.
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (isPostgresError(error)) return false;
  if (isConnectivityError(error)) return true;
  const message = error instanceof Error ? error.message : "";
  return (error as Error)?.name === "MaxRetriesPerRequestError" || NOT_SERVING.test(message);
}

const isCommandTimeout = (error: unknown) => error instanceof Error && error.message === "Command timed out";
const failureEvent = (error: unknown): StoreEvent =>
  error instanceof Error && error.message.startsWith(QUEUE_STATE_LOST) ? "redisLost" : "redisFailed";

export interface QueueMode {
  /** The store serving, as the metric shows it. */
  readonly current: StoreMode;
  readonly state: StoreState;
  /** When this process last left Redis (epoch ms). */
  readonly fallbackSinceMs: number;
  /** At start: follows the store row, or makes sure Redis holds the record (filling it if not). */
  init(): Promise<void>;
  /** The admission tick's checks on Redis: its data still there, and the store row. */
  checkRedisState(): Promise<void>;
  /** Runs `onRedis`; on a Redis outage (or while one lasts) runs `onPostgres` instead. */
  run<T>(onRedis: () => Promise<T>, onPostgres: () => Promise<T>): Promise<T>;
  stop(): void;
  /** On shutdown, while PostgreSQL is still open: waits for a probe under way (it may be restoring). */
  release(): Promise<void>;
}

export interface QueueModeOptions {
  redis: RedisClient;
  redisQueue: RedisQueue;
  db: QueueDb;
  logger: Logger;
  registry: Registry;
  probeIntervalMs: number;
  /** Ended rows younger than this are restored too: their token records may still say ACTIVE. */
  recentlyEndedSeconds: number;
  /** A cut-off not refreshed for this long belongs to a process that is gone or reaches Redis again. */
  cutOffFreshMs: number;
}

export function createQueueMode(options: QueueModeOptions): QueueMode {
  const { redis, redisQueue, logger } = options;
  const store = createQueueStore(options.db, {
    processId: randomBytes(8).toString("hex"),
    freshSeconds: options.cutOffFreshMs / 1000,
  });
  const gauge = new Gauge({
    name: "queue_store_mode",
    help: "Store serving the waiting room (1 = current mode)",
    labelNames: ["mode"] as const,
    registers: [options.registry],
  });
  let state: StoreState = "starting";
  let stopped = false;
  /** Epoch ms of leaving Redis, and of the first of an unbroken run of command timeouts. */
  const since = { fallback: 0, timingOut: 0 };
  /** Command timeouts since `since.timingOut`, with no answer from Redis in between. */
  let timeouts = 0;
  /** The PING a timeout sends to learn whether Redis still answers; one at a time. */
  let livenessPing: Promise<void> | undefined;
  /** The restored-at marker as last read: a new value means some process filled Redis again. */
  let lastRestoredAt: string | undefined;
  /** The store row's write on leaving Redis: fallback calls wait for it. */
  let leaving: Promise<void> = Promise.resolve();
  let probeTimer: NodeJS.Timeout | undefined;
  /** The probe running now, which release() waits for; a restore under way shows as rebuilding. */
  let probing: Promise<void> | undefined;
  let restoring = false;

  const current = (): StoreMode =>
    state === "redis" ? "redis" : state === "postgres" && !restoring ? "fallback" : "rebuilding";
  const showMode = () => {
    for (const mode of ["redis", "fallback", "rebuilding"] as const) gauge.set({ mode }, mode === current() ? 1 : 0);
  };
  showMode();
  const silentTooLong = () => timeouts >= MIN_TIMEOUTS && Date.now() - since.timingOut >= SILENT_TOO_LONG_MS;

  /** Fires `event`; false when the table has no transition for it in the current state. */
  function fire(event: StoreEvent, error?: unknown, evidence?: Record<string, number>): boolean {
    const transition = stopped ? undefined : nextState(state, event, silentTooLong);
    if (!transition) return false;
    const from = state;
    state = transition.to;
    showMode();
    const log = state === "postgres" && from === "redis" ? logger.warn : logger.info;
    log.call(
      logger,
      { event, from, state, err: (error as Error | undefined)?.message, ...evidence },
      `waiting room store: ${transition.cause}`,
    );
    if (state === "redis") {
      if (from === "postgres") redisQueue.forgetSeenConcerts();
      return true;
    }
    since.fallback = Date.now();
    redisAnswered();
    if (event !== "postgresServes") leaving = toPostgres(event === "redisFailed" || event === "redisTimedOut");
    // A probe under way schedules the next one itself.
    if (!probing) scheduleProbe();
    return true;
  }

  const toPostgres = (cutOff: boolean) =>
    store
      .toPostgres(cutOff)
      .catch((error: unknown) => logger.warn({ err: (error as Error).message }, "could not write the store row"));

  /** Redis answered: whatever timed out before was slowness, not an outage. */
  function redisAnswered(): void {
    since.timingOut = 0;
    timeouts = 0;
  }

  /**
   * A command timed out: one more piece of evidence, and a PING to find out whether Redis still
   * answers (its reply clears the evidence). Fires redisTimedOut; true if it moved to PostgreSQL.
   */
  function commandTimedOut(error: unknown): boolean {
    since.timingOut ||= Date.now();
    timeouts++;
    livenessPing ??= redis
      .ping()
      .then(redisAnswered, () => undefined)
      .finally(() => (livenessPing = undefined));
    return fire("redisTimedOut", error, { timeouts, silentMs: Date.now() - since.timingOut });
  }

  function scheduleProbe(): void {
    clearTimeout(probeTimer);
    if (!stopped)
      probeTimer = setTimeout(() => (probing = probe().finally(() => (probing = undefined))), options.probeIntervalMs);
  }

  /** Makes Redis hold PostgreSQL's record (store.restore); false while a cut-off is fresh. */
  async function restore(): Promise<boolean> {
    const startedMs = Date.now();
    try {
      return await store.restore(
        options.recentlyEndedSeconds,
        async () => (await redis.get(redisQueue.keys.rebuiltAt)) !== null,
        async (groups) => {
          restoring = true;
          showMode();
          for (const [concertId, { nextSeqFloor, rows }] of groups) {
            for (let i = 0; i < rows.length; i += MERGE_CHUNK)
              await redisQueue.merge(concertId, nextSeqFloor, rows.slice(i, i + MERGE_CHUNK));
          }
          await redis.set(redisQueue.keys.rebuiltAt, String(startedMs));
          logger.info({ concerts: groups.size, ms: Date.now() - startedMs }, "waiting room restored in Redis");
        },
      );
    } finally {
      restoring = false;
      showMode();
    }
  }

  /** On PostgreSQL: back to Redis once it answers and holds the record; while it fails us, a fresh cut-off. */
  async function probe(): Promise<void> {
    try {
      await redis.ping();
    } catch {
      await toPostgres(true);
      return scheduleProbe();
    }
    // The row's write on leaving Redis first: a concert lost on a cluster master leaves the marker
    // in place, and only the row then says Redis must be filled.
    await leaving;
    if (await restore().catch((error: unknown) => void logger.error({ err: error }, "going back to Redis failed")))
      fire("redisServes");
    if (state !== "redis") scheduleProbe();
  }

  async function run<T>(onRedis: () => Promise<T>, onPostgres: () => Promise<T>): Promise<T> {
    if (state === "redis") {
      try {
        const result = await onRedis();
        redisAnswered();
        return result;
      } catch (error) {
        if (!isRedisUnavailable(error)) throw error;
        // A late reply may come from our own busy event loop rather than from Redis, and the
        // command may have run: fail this call (retryable) unless Redis stays silent.
        if (!isCommandTimeout(error)) fire(failureEvent(error), error);
        else if (!commandTimedOut(error) && state === "redis")
          throw new UnavailableError("Redis is slow to answer; retry", { cause: error });
      }
    }
    await leaving;
    try {
      return await onPostgres();
    } catch (error) {
      // Another process restored Redis while this one still served from PostgreSQL: follow it.
      if (error instanceof StoreMovedError && (state === "redis" || fire("redisServes")))
        return run(onRedis, onPostgres);
      throw error;
    }
  }

  return {
    get current() {
      return current();
    },
    get state() {
      return state;
    },
    get fallbackSinceMs() {
      return since.fallback;
    },
    async init() {
      // PostgreSQL unreachable at start: nothing says it serves.
      const onPostgres = await store.postgresServes().catch(() => false);
      const ready = !onPostgres && ((await redis.get(redisQueue.keys.rebuiltAt)) !== null || (await restore()));
      fire(ready ? "redisServes" : "postgresServes");
    },
    async checkRedisState() {
      if (state !== "redis") return;
      try {
        const restoredAt = await redis.get(redisQueue.keys.rebuiltAt);
        if (restoredAt === null) return void fire("redisLost");
        // Filled again by another process since the last tick: concerts seen before may rightly
        // have no counter now (nobody was live in them), so a join there must not count as a loss.
        if (lastRestoredAt !== undefined && restoredAt !== lastRestoredAt) redisQueue.forgetSeenConcerts();
        lastRestoredAt = restoredAt;
        redisAnswered();
      } catch (error) {
        if (!isRedisUnavailable(error)) throw error;
        // Slow, maybe not down: the next tick looks again.
        return void (isCommandTimeout(error) ? commandTimedOut(error) : fire(failureEvent(error), error));
      }
      if (await store.postgresServes().catch(() => false)) fire("postgresServes");
    },
    run,
    stop() {
      stopped = true;
      clearTimeout(probeTimer);
    },
    async release() {
      await probing;
    },
  };
}
