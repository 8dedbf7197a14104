// Whether this process's calls go to Redis, the index, or PostgreSQL, the record, as the table of
// queue-store-states.ts says: this file observes (failed calls, the check every admission tick),
// fires its events and fills Redis. A write Redis cannot take is made on PostgreSQL and noted
// (pg-queue.ts); the next check of any process reaching Redis merges the noted rows before it admits.

import { Gauge, type Registry } from "prom-client";
import { UnavailableError } from "../platform/domain-error.js";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis/client.js";
import { isConnectivityError } from "../platform/rpc/error-mapping.js";
import { QUEUE_STATE_LOST } from "./queue-lua.js";
import type { MergeRow } from "./queue-scripts.js";
import { nextState, type StoreEvent, type StoreState } from "./queue-store-states.js";
import { isPostgresError, type QueueDb } from "./queue-db.js";
import type { RedisQueue } from "./redis-queue.js";

const NOT_SERVING = new RegExp(`^(LOADING|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|${QUEUE_STATE_LOST})\\b`);

/** Redis failures meaning "unreachable, not serving or lost its data", as opposed to a bug in a command. */
export function isRedisUnavailable(error: unknown): boolean {
  if (isPostgresError(error)) return false;
  if (isConnectivityError(error)) return true;
  return (error as Error)?.name === "MaxRetriesPerRequestError" || NOT_SERVING.test((error as Error)?.message);
}

// Per concert in line order, with the place new joins must pass: the noted rows (after a loss, $2, all live ones).
const ROWS = `
select concert_id, (select max(seq) from queue_entry q where q.concert_id = p.concert_id)::text as floor,
  json_agg(json_build_object('token', token, 'userId', user_id, 'seq', seq::text, 'state', state,
    'activeExpireMs', coalesce(floor(extract(epoch from active_expire_at) * 1000), 0)) order by seq, token) as rows
from queue_entry p where token = any($1::text[]) or ($2 and state in ('WAITING', 'ACTIVE')) group by concert_id`;

export type QueueMode = ReturnType<typeof createQueueMode>;

export function createQueueMode(options: {
  redis: RedisClient;
  redisQueue: RedisQueue;
  db: QueueDb;
  logger: Logger;
  registry: Registry;
  /** A rebuild reads the record this long after Redis was found behind (a slower join is rechecked). */
  rebuildDelayMs: number;
}) {
  const { redis, redisQueue, db, logger } = options;
  const gauge = new Gauge({
    name: "queue_store_mode",
    help: "Store serving the waiting room (1 = current mode)",
    labelNames: ["mode"] as const,
    registers: [options.registry],
  });
  let state: StoreState = "postgres";
  let lost = false; // a script found a concert's keys gone: the rebuild merges every row
  /** When Redis was found behind, and the rebuild under way. */
  let behindSinceMs = 0;
  let pending: Promise<void> | undefined;
  /** Checks timed out in a row since the first of them: a starved event loop may see a healthy Redis time out. */
  const silence = { sinceMs: 0, checks: 0 };
  const silentTooLong = () => silence.checks >= 3 && Date.now() - silence.sinceMs >= 5000;
  const showMode = () => {
    for (const mode of ["redis", "rebuilding", "postgres"] as const) gauge.set({ mode }, mode === state ? 1 : 0);
  };
  showMode();

  function fire(event: StoreEvent, error?: unknown): void {
    const transition = nextState(state, event, silentTooLong);
    if (!transition) return;
    const from = state;
    state = transition.to;
    showMode();
    if (state === "rebuilding") behindSinceMs = Date.now();
    // Concerts seen before may rightly have no keys now (nobody was live in them when Redis was filled).
    if (state === "redis") redisQueue.forgetSeenConcerts();
    const log = state === "postgres" ? logger.warn : logger.info;
    log.call(logger, { event, from, state, err: (error as Error)?.message }, `waiting room store: ${transition.cause}`);
  }

  /** A Redis call failed: fires what it says; throws unless the caller should go on from PostgreSQL. */
  function failed(error: unknown): void {
    if (!isRedisUnavailable(error)) throw error;
    if ((error as Error).message.startsWith(QUEUE_STATE_LOST)) {
      lost = true;
      fire("indexBehind", error);
      return void rebuild().catch(() => undefined);
    }
    // A late reply may be our own busy event loop's, and the command may have run: retryable.
    if ((error as Error).message !== "Command timed out") return void fire("redisFailed", error);
    throw new UnavailableError("Redis is slow to answer; retry", { cause: error });
  }

  /** One rebuild at a time (the others wait, then find nothing to do); the notes go once Redis has the rows. */
  const fill = () =>
    db.transaction(async (query) => {
      await query("select pg_advisory_xact_lock(hashtext('queue:rebuild'))");
      const startedMs = Date.now();
      const all = lost || (await redis.get(redisQueue.keys.rebuiltAt)) === null;
      const noted = (await query<{ token: string }>("delete from queue_missed returning token")).map((r) => r.token);
      if (all || noted.length > 0) {
        const groups = await query<{ concert_id: string; floor: string; rows: MergeRow[] }>(ROWS, [noted, all]);
        for (const { concert_id: concertId, floor, rows } of groups)
          for (let i = 0; i < rows.length; i += 500) await redisQueue.merge(concertId, floor, rows.slice(i, i + 500));
        await redis.set(redisQueue.keys.rebuiltAt, String(startedMs));
        logger.info({ all, concerts: groups.length, ms: Date.now() - startedMs }, "waiting room: Redis filled");
      }
      lost = false;
      fire("rebuilt");
    });

  /** Fills Redis once joins sent to it before it was found behind have had time to reach PostgreSQL. */
  function rebuild(): Promise<void> {
    const waitMs = Math.max(0, behindSinceMs + options.rebuildDelayMs - Date.now());
    pending ??= new Promise((resolve) => setTimeout(resolve, waitMs)).then(fill).finally(() => (pending = undefined));
    return pending;
  }

  return {
    get state() {
      return state;
    },
    /**
     * Compares Redis with the record, filling it when it misses anything: at start and every
     * admission tick. True when Redis was found current (nothing was filled).
     */
    async check(): Promise<boolean> {
      try {
        // Both reads at once: in a burst each round trip waits a turn of a busy event loop.
        const missedRead = db.query("select 1 from queue_missed limit 1");
        missedRead.catch(() => undefined);
        const marker = await redis.get(redisQueue.keys.rebuiltAt);
        Object.assign(silence, { sinceMs: 0, checks: 0 });
        const missed = await missedRead;
        if (!lost && marker !== null && missed.length === 0) {
          fire("indexCurrent");
          return state === "redis";
        }
        fire("indexBehind");
        if (state === "rebuilding") await rebuild();
      } catch (error) {
        // Checks timing out for 5 s in a row (at least 3) are an outage, not our own slowness.
        const timedOut = (error as Error).message === "Command timed out";
        if (timedOut && silence.checks++ === 0) silence.sinceMs = Date.now();
        if (timedOut) fire("redisTimedOut", error);
        if (state !== "postgres") failed(error);
      }
      return false;
    },
    /** `onRedis`, or `onPostgres` when Redis fails this process (then or before); waits while Redis is filled. */
    async run<T>(onRedis: () => Promise<T>, onPostgres: () => Promise<T>): Promise<T> {
      // A join sent to Redis before its counters are raised would stand ahead of earlier joins.
      if (state === "rebuilding") await pending?.catch(() => undefined);
      if (state !== "postgres") {
        try {
          return await onRedis();
        } catch (error) {
          failed(error);
        }
      }
      return onPostgres();
    },
    /** On shutdown, while PostgreSQL is still open: waits for a rebuild under way. */
    release: () => pending?.catch(() => undefined),
  };
}
