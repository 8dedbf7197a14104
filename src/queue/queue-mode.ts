// Which store serves the waiting room. A circuit breaker: a lost Redis connection (or command
// timeouts without a single answer for 2 s) switches this process to PostgreSQL, so later calls
// do not each wait for a command timeout; a probe pings Redis in the background, and the way
// back merges PostgreSQL's view into Redis first: once per outage under a Redis lock (every live
// row, in FIFO order), then, with this process's calls held for a moment, the rows this process
// itself wrote while in fallback.
//
// One store for everyone: a process that Redis fails marks itself in PostgreSQL (queue_fallback,
// refreshed by a timer while it lasts), and every other process follows it
// into fallback at its next tick (or at start) and stays there while such a mark is fresh.
// Otherwise a process cut off from Redis alone would line its joins up behind everyone the
// others take through Redis meanwhile, and the two stores would each admit up to the cap.
// Followers mark themselves too, as following: processes switch back one by one (each at its own
// probe), and one already back on Redis admits nobody while any other is still in fallback,
// where it admits from PostgreSQL and takes leaves that Redis has not merged yet.

import { randomBytes } from "node:crypto";
import { Gauge, type Registry } from "prom-client";
import { UnavailableError } from "../platform/domain-error.js";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis/client.js";
import { isConnectivityError } from "../platform/rpc/error-mapping.js";
import type { PgQueue } from "./pg-queue.js";
import { QUEUE_STATE_LOST } from "./queue-lua.js";
import type { MergeRow } from "./queue-scripts.js";
import type { RedisQueue } from "./redis-queue.js";

export type StoreMode = "redis" | "fallback" | "rebuilding";
const MODES: readonly StoreMode[] = ["redis", "fallback", "rebuilding"];

/** Timeouts without a single answer for this long mean Redis hangs: switch to PostgreSQL. */
const TIMEOUTS_BEFORE_TRIP_MS = 2000;
/** Rows per MERGE script call, to keep each script short. */
const MERGE_CHUNK = 500;
const REBUILD_LOCK_MS = 120_000;
/** Longest a process back on Redis holds admission for others still in fallback. */
const MAX_ADMISSION_PAUSE_MS = 10_000;

const NOT_SERVING = new RegExp(`^(LOADING|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|${QUEUE_STATE_LOST})\\b`);

/**
 * Redis failures that mean "unreachable, not serving or lost its data", as opposed to a bug in a
 * command. A lost concert (a cluster node restarted empty) is handled like an outage: the way
 * back rebuilds it.
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (isConnectivityError(error)) return true;
  const message = error instanceof Error ? error.message : "";
  return (error as Error)?.name === "MaxRetriesPerRequestError" || NOT_SERVING.test(message);
}

const isCommandTimeout = (error: unknown) => error instanceof Error && error.message === "Command timed out";

/** Records tokens a fallback call wrote, so the way back can merge exactly those rows. */
export type Touch = (tokens: Iterable<string>) => void;

export interface QueueMode {
  readonly current: StoreMode;
  /** When this process last switched to PostgreSQL (epoch ms). */
  readonly fallbackSinceMs: number;
  /** At start: makes sure Redis holds the waiting room, rebuilding it from PostgreSQL if not. */
  init(): Promise<void>;
  /**
   * Switches to PostgreSQL if Redis no longer holds the waiting room: a restart between two
   * calls loses the data without any call failing. The admission loop runs this every tick.
   */
  checkRedisState(): Promise<void>;
  /**
   * On Redis, but another process is still in fallback (switching back one by one): admission
   * waits, since that process admits from PostgreSQL until it has merged its writes.
   */
  readonly othersStillInFallback: boolean;
  /** Tokens written to PostgreSQL outside `run` that the way back must merge; ignored on Redis. */
  remember(tokens: Iterable<string>): void;
  /** Runs `onRedis`; on a Redis outage (or while one lasts) runs `onPostgres` instead. */
  run<T>(onRedis: () => Promise<T>, onPostgres: (touch: Touch) => Promise<T>): Promise<T>;
  stop(): void;
  /** On shutdown, while PostgreSQL is still open: removes this process's fallback mark, if any. */
  release(): Promise<void>;
}

export interface QueueModeOptions {
  redis: RedisClient;
  redisQueue: RedisQueue;
  pg: PgQueue;
  logger: Logger;
  registry: Registry;
  probeIntervalMs: number;
  /** Ended rows younger than this are merged too: their token records may still say ACTIVE. */
  recentlyEndedSeconds: number;
  /** A fallback mark not refreshed for this long belongs to a process that is gone. */
  fallbackMarkFreshMs: number;
}

export function createQueueMode(options: QueueModeOptions): QueueMode {
  const { redis, redisQueue, pg, logger } = options;
  const gauge = new Gauge({
    name: "queue_store_mode",
    help: "Store serving the waiting room (1 = current mode)",
    labelNames: ["mode"] as const,
    registers: [options.registry],
  });
  let mode: StoreMode = "redis";
  let fallbackSinceMs = 0;
  /** In fallback only because another process is; such a process leaves no mark of its own. */
  let following = false;
  const processId = randomBytes(8).toString("hex");
  const touched = new Set<string>();
  let held: Promise<void> | undefined;
  let fallbackCalls = 0;
  let onIdle: (() => void) | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** The rebuilt-at marker as last read: a new value means some process rebuilt Redis. */
  let lastRebuiltAt: string | undefined;
  /** Start of an unbroken run of command timeouts; 0 after any answer. */
  let timingOutSinceMs = 0;
  /** Back on Redis while another process still serves from PostgreSQL (read every tick). */
  let othersStillInFallback = false;
  /** Since when admission has waited for the others (0: it does not). */
  let pausedSinceMs = 0;
  /** Refreshes this process's mark between admission ticks, which may run long in fallback. */
  let markTimer: NodeJS.Timeout | undefined;
  /** The probe running now, which release() waits for: it may write the mark or rebuild. */
  let probing: Promise<void> | undefined;

  const setMode = (next: StoreMode, detail: Record<string, unknown> = {}) => {
    mode = next;
    for (const m of MODES) gauge.set({ mode: m }, m === next ? 1 : 0);
    (next === "fallback" ? logger.warn.bind(logger) : logger.info.bind(logger))(
      { mode: next, ...detail },
      "waiting room store mode changed",
    );
  };
  setMode("redis");

  const scheduleProbe = () => {
    if (!stopped)
      probeTimer = setTimeout(() => (probing = probe().finally(() => (probing = undefined))), options.probeIntervalMs);
  };

  // Writes and deletes of this process's mark, one at a time in call order: a refresh started
  // by an admission tick must never land after the delete that ended the mark.
  let markOps: Promise<unknown> = Promise.resolve();
  const serially = (op: () => Promise<unknown>): Promise<unknown> => (markOps = markOps.then(op, op));
  // One refresh waiting is enough: with PostgreSQL slow, the timer and the ticks would otherwise
  // queue up writes that release() then waits behind. The write reads the state when it runs.
  let markQueued = false;
  const mark = () => {
    if (markQueued) return markOps;
    markQueued = true;
    return serially(() => {
      markQueued = false;
      return mode === "redis" || stopped ? Promise.resolve() : pg.markFallback(processId, fallbackSinceMs, following);
    }).catch((error: unknown) =>
      logger.warn({ err: (error as Error).message }, "could not mark the PostgreSQL fallback"),
    );
  };
  const unmark = () => serially(() => pg.clearFallback(processId)).catch(() => undefined);

  /** Other processes' fresh marks. Unknown (PostgreSQL down) counts as none. */
  const otherMarks = () =>
    pg.otherFallbackMarks(processId, options.fallbackMarkFreshMs / 1000).catch(() => ({ cutOff: false, any: false }));
  /** Another process serves from PostgreSQL because Redis failed it. */
  const othersInFallback = async () => (await otherMarks()).cutOff;

  function trip(error: unknown, follow = false): void {
    if (mode !== "redis" || stopped) return;
    timingOutSinceMs = 0;
    fallbackSinceMs = Date.now();
    following = follow;
    setMode("fallback", { err: (error as Error).message, following });
    void mark();
    clearInterval(markTimer);
    markTimer = setInterval(() => void mark(), Math.max(100, options.fallbackMarkFreshMs / 3));
    markTimer.unref();
    scheduleProbe();
  }

  /** Merges the rows of the tokens this process wrote in fallback; a token written meanwhile stays for the next merge. */
  async function mergeTouched(): Promise<void> {
    const tokens = [...touched];
    await mergeGroups(await pg.rowsOfTokens(tokens));
    for (const token of tokens) touched.delete(token);
  }

  async function mergeGroups(groups: Map<string, { nextSeqFloor: string; rows: MergeRow[] }>): Promise<void> {
    for (const [concertId, { nextSeqFloor, rows }] of groups) {
      for (let i = 0; i < rows.length; i += MERGE_CHUNK)
        await redisQueue.merge(concertId, nextSeqFloor, rows.slice(i, i + MERGE_CHUNK));
    }
  }

  /**
   * Merges everything unless some process did since `sinceMs` (a missing marker means Redis lost
   * its data); false when another process holds the lock.
   */
  async function rebuildIfNeeded(sinceMs: number): Promise<boolean> {
    const rebuiltAt = Number((await redis.get(redisQueue.keys.rebuiltAt)) ?? 0);
    if (rebuiltAt > 0 && rebuiltAt >= sinceMs) return true;
    const owner = randomBytes(8).toString("hex");
    if ((await redis.set(redisQueue.keys.rebuildLock, owner, "PX", REBUILD_LOCK_MS, "NX")) !== "OK") return false;
    setMode("rebuilding");
    try {
      const startedMs = Date.now();
      const groups = await pg.rowsToMerge(options.recentlyEndedSeconds);
      await mergeGroups(groups);
      await redis.set(redisQueue.keys.rebuiltAt, String(startedMs));
      logger.info(
        { concerts: groups.size, ms: Date.now() - startedMs },
        "waiting room rebuilt in Redis from PostgreSQL",
      );
      return true;
    } finally {
      await redisQueue.scripts.releaseLock(redisQueue.keys.rebuildLock, owner);
    }
  }

  async function switchBack(): Promise<void> {
    let release!: () => void;
    held = new Promise((resolve) => (release = resolve));
    try {
      if (fallbackCalls > 0) await new Promise<void>((resolve) => (onIdle = resolve));
      await mergeTouched();
      redisQueue.forgetSeenConcerts();
      following = false;
      setMode("redis", { outageMs: Date.now() - fallbackSinceMs });
      // Tokens remembered while the merge ran (a slow join's write, which does not wait for
      // held calls) go in now; later ones find this process on Redis and merge themselves.
      if (touched.size > 0)
        await mergeTouched().catch((error: unknown) =>
          logger.warn({ err: (error as Error).message, tokens: touched.size }, "could not merge late fallback writes"),
        );
      clearInterval(markTimer);
      // Back with this process's writes merged: those still in fallback may switch back too.
      await unmark();
    } finally {
      held = undefined;
      release();
    }
  }

  async function probe(): Promise<void> {
    try {
      await redis.ping();
      // Reachable again: no longer a reason for the others to stay in fallback, but still on
      // PostgreSQL until this process has merged its writes (the mark says so until then).
      if (!following) {
        following = true;
        await mark();
      }
      if (!(await othersInFallback()) && (await rebuildIfNeeded(fallbackSinceMs))) {
        await switchBack();
        return;
      }
    } catch (error) {
      if (mode === "rebuilding") setMode("fallback");
      if (isRedisUnavailable(error)) {
        // Redis fails this process itself (a PING, or on a cluster a rebuild or merge that
        // reaches a node the PING did not): it is no longer just following.
        if (following) {
          following = false;
          await mark();
        }
      } else {
        logger.error({ err: error }, "leaving the PostgreSQL fallback failed");
      }
    }
    scheduleProbe();
  }

  return {
    get current() {
      return mode;
    },
    get fallbackSinceMs() {
      return fallbackSinceMs;
    },
    get othersStillInFallback() {
      return mode === "redis" && othersStillInFallback;
    },
    async init() {
      // Started during another process's outage: join it in fallback rather than rebuild Redis
      // under it; the probe brings this process back with the others.
      if (await othersInFallback()) trip(new Error("another process serves the waiting room from PostgreSQL"), true);
      else if (!(await rebuildIfNeeded(0))) trip(new Error("another process is rebuilding the waiting room"), true);
      else if (mode === "rebuilding") setMode("redis");
    },
    async checkRedisState() {
      if (mode !== "redis") return;
      try {
        const rebuiltAt = await redis.get(redisQueue.keys.rebuiltAt);
        if (rebuiltAt === null) trip(new Error("Redis holds no waiting room state: restarted empty?"));
        // Rebuilt by another process since the last tick: concerts seen before may rightly have
        // no counter now (nobody was live in them), so a join there must not count as a loss.
        else if (lastRebuiltAt !== undefined && rebuiltAt !== lastRebuiltAt) redisQueue.forgetSeenConcerts();
        if (rebuiltAt !== null) lastRebuiltAt = rebuiltAt;
      } catch (error) {
        if (!isRedisUnavailable(error)) throw error;
        trip(error);
      }
      if (mode !== "redis") return;
      const others = await otherMarks();
      // Admission waits for the others to come back, within a probe interval normally; a process
      // that cannot (its merges keep failing) must not stop admission everywhere for good.
      if (!others.any) pausedSinceMs = 0;
      else if (pausedSinceMs === 0) pausedSinceMs = Date.now();
      const pausedTooLong = pausedSinceMs > 0 && Date.now() - pausedSinceMs > MAX_ADMISSION_PAUSE_MS;
      if (pausedTooLong && othersStillInFallback)
        logger.warn(
          { pausedMs: Date.now() - pausedSinceMs },
          "another process is still in fallback; admitting from Redis again",
        );
      othersStillInFallback = others.any && !pausedTooLong;
      if (others.cutOff) trip(new Error("another process serves the waiting room from PostgreSQL"), true);
    },
    remember(tokens) {
      if (mode === "redis") return;
      for (const token of tokens) touched.add(token);
    },
    async run(onRedis, onPostgres) {
      while (held) await held;
      if (mode === "redis") {
        try {
          const result = await onRedis();
          timingOutSinceMs = 0;
          return result;
        } catch (error) {
          if (!isRedisUnavailable(error)) throw error;
          if (isCommandTimeout(error)) {
            // A late reply may come from our own busy event loop rather than from Redis, and the
            // command may have run: fail this call (retryable) unless Redis stays silent.
            timingOutSinceMs ||= Date.now();
            if (Date.now() - timingOutSinceMs < TIMEOUTS_BEFORE_TRIP_MS)
              throw new UnavailableError("Redis is slow to answer; retry", { cause: error });
          }
          trip(error);
        }
      }
      fallbackCalls++;
      try {
        return await onPostgres((tokens) => {
          for (const token of tokens) touched.add(token);
        });
      } finally {
        if (--fallbackCalls === 0) onIdle?.();
      }
    },
    stop() {
      stopped = true;
      clearTimeout(probeTimer);
      clearInterval(markTimer);
    },
    async release() {
      await probing;
      await unmark();
    },
  };
}
