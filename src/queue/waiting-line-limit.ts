// MAX_WAITING_USERS: a concert's line holds at most that many waiting users; a new user past it
// is refused with RESOURCE_EXHAUSTED (OVERLOADED) and a RetryInfo, while a user already in line
// who joins again still gets their place (JoinQueue is idempotent). It runs as a guard in front
// of JoinQueue, so the join's own path stays as it is.
//
// The line's length is read from Redis (ZCARD of the concert's waiting set) only when the last
// reading plus the joins let through since then reach the limit, or when that reading is older
// than a second (other processes join too, admissions shorten the line): a crowd far below the
// limit costs no round trip. Concurrent joins share one reading. A process's own joins cannot
// overshoot the limit; joins in other processes since its last reading can, by that second's worth.
// While Redis cannot answer, joins go through: the waiting room's fallback takes them as before.

import { OverloadedError } from "../platform/domain-error.js";
import type { RedisClient } from "../platform/redis/client.js";
import type { CallGuard } from "../platform/rpc/service-wrapper.js";
import type { QueueKeys } from "./queue-keys.js";

/** A line reading older than this is taken again before it may refuse or admit near the limit. */
const READING_MAX_AGE_MS = 1000;
/** Users refused because the line is full are told to come back after this, plus up to as much again. */
export const FULL_LINE_RETRY_MS = 5000;

interface LineReading {
  waiting: number;
  atMs: number;
  /** Joins let through since the reading was taken. */
  since: number;
  pending?: Promise<void>;
}

export interface WaitingLineLimitDeps {
  redis: RedisClient;
  keys: QueueKeys;
  maxWaitingUsers: number;
  /** Concerts whose readings are kept; a crude bound, the map is reset when it is reached. */
  maxConcerts?: number;
}

export function createWaitingLineLimit(deps: WaitingLineLimitDeps) {
  const { redis, keys, maxWaitingUsers } = deps;
  const readings = new Map<string, LineReading>();

  const read = (concertId: string, reading: LineReading): Promise<void> =>
    (reading.pending ??= (async () => {
      const since = reading.since;
      try {
        reading.waiting = await redis.zcard(keys.concert(concertId).waiting);
        reading.atMs = Date.now();
        reading.since -= since;
      } finally {
        reading.pending = undefined;
      }
    })());

  const alreadyInLine = async (concertId: string, userId: string): Promise<boolean> =>
    (await redis.hget(keys.concert(concertId).users, userId)) !== null;

  const refusal = () =>
    new OverloadedError(
      `the waiting line of this concert is full (${maxWaitingUsers} users); join again after the delay given`,
      FULL_LINE_RETRY_MS * (1 + Math.random()),
    );

  /** Throws OVERLOADED if `userId` may not join the line of `concertId` now. */
  async function admitJoin(concertId: string, userId: string): Promise<void> {
    if (maxWaitingUsers <= 0) return;
    let reading = readings.get(concertId);
    if (!reading) {
      if (readings.size >= (deps.maxConcerts ?? 10_000)) readings.clear();
      reading = { waiting: 0, atMs: 0, since: 0 };
      readings.set(concertId, reading);
    }
    try {
      if (reading.waiting + reading.since >= maxWaitingUsers || Date.now() - reading.atMs > READING_MAX_AGE_MS)
        await read(concertId, reading);
      if (reading.waiting + reading.since >= maxWaitingUsers && !(await alreadyInLine(concertId, userId)))
        throw refusal();
    } catch (error) {
      if (error instanceof OverloadedError) throw error;
      // Redis failed: the join itself finds out and takes the fallback path.
      return;
    }
    reading.since++;
  }

  return { admitJoin };
}

/** The limit as a guard for JoinQueue (request fields concert_id and user_id). */
export function createWaitingLineGuard(deps: WaitingLineLimitDeps): CallGuard {
  const limit = createWaitingLineLimit(deps);
  return async (request) => {
    const { concertId, userId } = request as { concertId: string; userId: string };
    await limit.admitJoin(concertId, userId);
  };
}
