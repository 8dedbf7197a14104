// Which store serves the waiting room, run as the state table of queue-store-states.ts: this
// file only observes (call failures, the admission tick's checks, a probe while on PostgreSQL),
// fires the table's events and carries out what entering a state means.
//
// One store for everyone: a process that Redis fails marks itself in PostgreSQL (queue_fallback,
// refreshed by a timer while it lasts) and every other process follows it there at its next tick
// (or at start). Otherwise a process cut off alone would line its joins up behind everyone the
// others take through Redis meanwhile, and the two stores would each admit up to the cap. The way
// back merges PostgreSQL's view into Redis: once per outage under a Redis lock (every live row,
// in FIFO order), then, with this process's calls held for a moment, the rows it wrote itself.

import { randomBytes } from "node:crypto";
import { Gauge, type Registry } from "prom-client";
import { UnavailableError } from "../platform/domain-error.js";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis/client.js";
import { isConnectivityError } from "../platform/rpc/error-mapping.js";
import type { PgQueue } from "./pg-queue.js";
import { QUEUE_STATE_LOST } from "./queue-lua.js";
import type { MergeRow } from "./queue-scripts.js";
import { nextState, servesFromRedis, type StoreEvent, type StoreGuard, type StoreState } from "./queue-store-states.js";
import type { RedisQueue } from "./redis-queue.js";

export type StoreMode = "redis" | "fallback" | "rebuilding";
/** What `queue_store_mode` shows for each state. */
const MODE_OF: Record<StoreState, StoreMode> = {
  starting: "rebuilding",
  redis: "redis",
  holding: "redis",
  "cut-off": "fallback",
  following: "fallback",
  rebuilding: "rebuilding",
  switching: "fallback",
};

/**
 * Command timeouts are evidence of a hung Redis only when they keep coming for this long, at
 * least MIN_TIMEOUTS of them, without one answer in between (guard silentTooLong). A failed
 * connection is evidence at once; a timeout alone may be our own starved event loop.
 */
const SILENT_TOO_LONG_MS = 5000;
const MIN_TIMEOUTS = 3;
/** Longest a process back on Redis holds admission for others still on PostgreSQL (guard holdNotSpent). */
const MAX_HOLD_MS = 10_000;
const REBUILD_LOCK_MS = 120_000;
/** Rows per MERGE script call, to keep each script short. */
const MERGE_CHUNK = 500;

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
  /** The store serving, as the metric shows it. */
  readonly current: StoreMode;
  readonly state: StoreState;
  /** When this process last left Redis (epoch ms). */
  readonly fallbackSinceMs: number;
  /** At start: makes sure Redis holds the waiting room, rebuilding it from PostgreSQL if not. */
  init(): Promise<void>;
  /** The admission tick's checks on Redis: its data still there, and the other processes' marks. */
  checkRedisState(): Promise<void>;
  /** In state `holding`: admission waits, since another process admits from PostgreSQL. */
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
  const processId = randomBytes(8).toString("hex");
  let state: StoreState = "starting";
  let stopped = false;
  /** Epoch ms of: leaving Redis; the first of an unbroken run of command timeouts; entering `holding`. */
  const since = { fallback: 0, timingOut: 0, hold: 0 };
  /** Command timeouts since `since.timingOut`, with no answer from Redis in between. */
  let timeouts = 0;
  /** The PING a timeout sends to learn whether Redis still answers; one at a time. */
  let livenessPing: Promise<void> | undefined;
  /** The rebuilt-at marker as last read: a new value means some process rebuilt Redis. */
  let lastRebuiltAt: string | undefined;
  /** Tokens this process wrote on PostgreSQL, for the merge on the way back. */
  const touched = new Set<string>();
  /** Fallback calls in flight: `switching` waits for them to end, and holds new calls meanwhile. */
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  let held: Promise<void> | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let markTimer: NodeJS.Timeout | undefined;
  /** The probe running now, which release() waits for: it may write the mark or rebuild. */
  let probing: Promise<void> | undefined;
  const onPostgres = () => state !== "starting" && !servesFromRedis(state);

  const guards: Record<StoreGuard, () => boolean> = {
    silentTooLong: () => timeouts >= MIN_TIMEOUTS && Date.now() - since.timingOut >= SILENT_TOO_LONG_MS,
    holdNotSpent: () => since.hold === 0 || Date.now() - since.hold <= MAX_HOLD_MS,
  };

  /** Fires `event`; false when the table has no transition for it in the current state. */
  function fire(event: StoreEvent, error?: unknown, evidence?: Record<string, number>): boolean {
    const transition = stopped ? undefined : nextState(state, event, (name) => guards[name]());
    if (!transition) return false;
    const wasOnRedis = !onPostgres();
    const from = state;
    state = transition.to;
    showMode();
    // Every change of state is logged with its cause; staying in the same state only at debug level.
    const log = from === state ? logger.debug : state === "cut-off" ? logger.warn : logger.info;
    log.call(
      logger,
      { event, from, state, err: (error as Error | undefined)?.message, ...evidence },
      `waiting room store: ${transition.cause}`,
    );
    if (wasOnRedis && onPostgres()) {
      since.fallback = Date.now();
      redisAnswered();
      clearInterval(markTimer);
      markTimer = setInterval(() => void mark(), Math.max(100, options.fallbackMarkFreshMs / 3));
      markTimer.unref();
      scheduleProbe();
    }
    if (state === "cut-off" || state === "following") void mark();
    if (state === "holding" && since.hold === 0) since.hold = Date.now();
    return true;
  }
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

  const showMode = () => {
    for (const mode of new Set(Object.values(MODE_OF))) gauge.set({ mode }, mode === MODE_OF[state] ? 1 : 0);
  };
  showMode();

  function scheduleProbe(): void {
    if (!stopped)
      probeTimer = setTimeout(() => (probing = probe().finally(() => (probing = undefined))), options.probeIntervalMs);
  }

  // Writes and deletes of this process's mark, one at a time in call order: a refresh started by
  // the timer must never land after the delete that ended the mark. One refresh waiting is
  // enough; it reads the state when it runs.
  let markOps: Promise<unknown> = Promise.resolve();
  let markQueued = false;
  const serially = (op: () => Promise<unknown>) => (markOps = markOps.then(op, op));
  const mark = () => {
    if (markQueued) return markOps;
    markQueued = true;
    return serially(async () => {
      markQueued = false;
      if (onPostgres() && !stopped) await pg.markFallback(processId, since.fallback, state !== "cut-off");
    }).catch((error: unknown) =>
      logger.warn({ err: (error as Error).message }, "could not mark the PostgreSQL fallback"),
    );
  };
  const unmark = () => serially(() => pg.clearFallback(processId)).catch(() => undefined);

  /** Other processes' fresh marks. Unknown (PostgreSQL down) counts as none. */
  const otherMarks = () =>
    pg.otherFallbackMarks(processId, options.fallbackMarkFreshMs / 1000).catch(() => ({ cutOff: false, any: false }));

  async function mergeGroups(groups: Map<string, { nextSeqFloor: string; rows: MergeRow[] }>): Promise<void> {
    for (const [concertId, { nextSeqFloor, rows }] of groups) {
      for (let i = 0; i < rows.length; i += MERGE_CHUNK)
        await redisQueue.merge(concertId, nextSeqFloor, rows.slice(i, i + MERGE_CHUNK));
    }
  }

  /** Merges the rows of the tokens this process wrote in fallback; a token written meanwhile stays for the next merge. */
  async function mergeTouched(): Promise<void> {
    const tokens = [...touched];
    await mergeGroups(await pg.rowsOfTokens(tokens));
    for (const token of tokens) touched.delete(token);
  }

  /** Fires `rebuilt` once Redis holds every row since `sinceMs` (merging them itself, under a lock), else `rebuildBusy`. */
  async function rebuildIfNeeded(sinceMs: number): Promise<void> {
    const rebuiltAt = Number((await redis.get(redisQueue.keys.rebuiltAt)) ?? 0);
    if (rebuiltAt > 0 && rebuiltAt >= sinceMs) return void fire("rebuilt");
    const owner = randomBytes(8).toString("hex");
    if ((await redis.set(redisQueue.keys.rebuildLock, owner, "PX", REBUILD_LOCK_MS, "NX")) !== "OK")
      return void fire("rebuildBusy");
    fire("rebuildStarted");
    try {
      const startedMs = Date.now();
      const groups = await pg.rowsToMerge(options.recentlyEndedSeconds);
      await mergeGroups(groups);
      await redis.set(redisQueue.keys.rebuiltAt, String(startedMs));
      logger.info(
        { concerts: groups.size, ms: Date.now() - startedMs },
        "waiting room rebuilt in Redis from PostgreSQL",
      );
    } finally {
      await redisQueue.scripts.releaseLock(redisQueue.keys.rebuildLock, owner);
    }
    fire("rebuilt");
  }

  /** State `switching`: merges this process's own fallback writes with its calls held, then back to Redis. */
  async function switchBack(): Promise<void> {
    let release!: () => void;
    held = new Promise((resolve) => (release = resolve));
    try {
      if (inFlight > 0) await new Promise<void>((resolve) => (onIdle = resolve));
      await mergeTouched();
      redisQueue.forgetSeenConcerts();
      fire("merged");
      // Tokens remembered while the merge ran (a slow join's write, which does not wait for held
      // calls) go in now; later ones find this process on Redis and merge themselves.
      if (touched.size > 0)
        await mergeTouched().catch((error: unknown) =>
          logger.warn({ err: (error as Error).message, tokens: touched.size }, "could not merge late fallback writes"),
        );
      clearInterval(markTimer);
      await unmark();
    } finally {
      held = undefined;
      release();
    }
  }

  async function probe(): Promise<void> {
    try {
      await redis.ping();
      fire("reachable");
      if (state === "following" && !(await otherMarks()).cutOff) await rebuildIfNeeded(since.fallback);
      // Back on Redis: a new outage schedules a probe of its own.
      if (state === "switching") return await switchBack();
    } catch (error) {
      if (isRedisUnavailable(error)) fire("redisFailed", error);
      else {
        logger.error({ err: error }, "leaving the PostgreSQL fallback failed");
        fire("failed", error);
      }
    }
    if (onPostgres()) scheduleProbe();
  }

  return {
    get current() {
      return MODE_OF[state];
    },
    get state() {
      return state;
    },
    get fallbackSinceMs() {
      return since.fallback;
    },
    get othersStillInFallback() {
      return state === "holding";
    },
    async init() {
      if ((await otherMarks()).cutOff) fire("otherCutOff");
      else await rebuildIfNeeded(0);
    },
    async checkRedisState() {
      if (!servesFromRedis(state)) return;
      try {
        const rebuiltAt = await redis.get(redisQueue.keys.rebuiltAt);
        if (rebuiltAt === null) fire("redisLost");
        // Rebuilt by another process since the last tick: concerts seen before may rightly have
        // no counter now (nobody was live in them), so a join there must not count as a loss.
        else if (lastRebuiltAt !== undefined && rebuiltAt !== lastRebuiltAt) redisQueue.forgetSeenConcerts();
        if (rebuiltAt !== null) lastRebuiltAt = rebuiltAt;
        redisAnswered();
      } catch (error) {
        if (!isRedisUnavailable(error)) throw error;
        if (!isCommandTimeout(error)) fire("redisFailed", error);
        // Slow, maybe not down: the next tick looks again.
        else if (!commandTimedOut(error)) return;
      }
      if (!servesFromRedis(state)) return;
      const others = await otherMarks();
      if (others.cutOff) fire("otherCutOff");
      else if (!others.any) {
        since.hold = 0;
        fire("othersBack");
      } else if (state === "holding" && !guards.holdNotSpent()) fire("holdTooLong");
      else fire("othersOnPostgres");
    },
    remember(tokens) {
      if (!onPostgres()) return;
      for (const token of tokens) touched.add(token);
    },
    async run(onRedis, onPostgresCall) {
      while (held) await held;
      if (servesFromRedis(state)) {
        try {
          const result = await onRedis();
          redisAnswered();
          return result;
        } catch (error) {
          if (!isRedisUnavailable(error)) throw error;
          // A late reply may come from our own busy event loop rather than from Redis, and the
          // command may have run: fail this call (retryable) unless Redis stays silent.
          if (!isCommandTimeout(error)) fire("redisFailed", error);
          else if (!commandTimedOut(error) && servesFromRedis(state))
            throw new UnavailableError("Redis is slow to answer; retry", { cause: error });
        }
      }
      inFlight++;
      try {
        return await onPostgresCall((tokens) => {
          for (const token of tokens) touched.add(token);
        });
      } finally {
        if (--inFlight === 0) onIdle?.();
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
