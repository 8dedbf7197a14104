// One admission step of a concert, decided in PostgreSQL in Redis's order, under the concert lock:
// Redis's sweep says who left, then the record ends them and the expired, counts the slots taken
// and admits the head of the line (admission-rule.ts). Steps run only while Redis misses nothing
// (queue-mode.ts): admission pauses while it is down, so no user is admitted by two stores.
import { admissionsThisTick, type AdmissionRule } from "./admission-rule.js";
import { CONCERT_LOCK_SQL, type QueueDb } from "./queue-db.js";
import type { RedisQueue } from "./redis-queue.js";

// Redis's head up to the first token with no row yet that Redis holds (a join committing keeps its
// place; one past UNCOMMITTED_JOIN_HOLD_MS is passed). clock_timestamp(): now() is before the lock
// wait. The outer `state = 'WAITING'`: a leave committed while this waits is rechecked there.
// Each head token's row is looked up once, by its key alone (the LIMIT 1 keeps the lateral from
// being flattened into a join): in a burst the planner's statistics say the concert has no waiting
// rows, and a join scanned all of them once per head token (10,000 × 1,687 rows: 2 s for one step).
export const ADMIT = `
with t as (select clock_timestamp() as at),
head as (select h.token, h.held, h.ord, q.state, q.concert_id
  from unnest($4::text[], $5::bool[]) with ordinality as h(token, held, ord)
  left join lateral (select q.state, q.concert_id from queue_entry q where q.token = h.token limit 1) q on true),
gap as (select min(g.ord) as ord from head g where g.held and g.state is null)
update queue_entry set state = 'ACTIVE', admitted_at = t.at, active_expire_at = t.at + make_interval(secs => $2)
from t where state = 'WAITING' and token = any(array(
  select h.token from head h
  where h.state = 'WAITING' and h.concert_id = $1 and h.ord < coalesce((select ord from gap), 9223372036854775807)
  order by h.ord limit $3))
returning token, floor(extract(epoch from t.at) * 1000)::float8 as "decidedMs"`;

/**
 * A leave writes PostgreSQL, then Redis (waiting-room.ts): for a token the record ended this
 * recently, Redis may not have its end yet. Older gaps are leaves whose second write was lost.
 */
export const LEAVE_IN_FLIGHT_S = 5;

/** Redis gets back the ACTIVE tokens admitted this recently (a step whose Redis half was lost is
 * repaired by the next), all of them with `repairAll` (the loop asks every RECENT_ADMISSIONS_S). */
export const RECENT_ADMISSIONS_S = 5;

type RedisLine = Pick<RedisQueue, "sweep" | "head">;

/** Returns who was admitted (and when it was decided: their expiry counts from then) and ended, and the ACTIVE tokens with their expiry for Redis to hold. */
export async function admit(db: QueueDb, concertId: string, rule: AdmissionRule, redis: RedisLine, repairAll = true) {
  // Redis first, outside the lock: its sweep names who left (only it sees the polls; they are
  // dropped there after the commit) and it only reads, like the head. The record's statements
  // then go out together on the connection (pipelined, run in order): a step costs a few round
  // trips, and in a burst each waits for a busy event loop (a step took 0.5-1.3 s at nine).
  const { expired, abandoned, atMs, active: heldInRedis } = await redis.sweep(concertId, rule);
  // The record ends what expired by the sweep's time, not by its own later one: a slot it frees
  // is then one the APPLY after the commit drops from Redis's active set, which never holds
  // more than the cap. The head for the slots Redis sees free is read while the record counts.
  const headFor = (slots: number) => redis.head(concertId, slots + abandoned.length);
  const redisHeld = heldInRedis - expired.length;
  const expected = admissionsThisTick({ active: redisHeld }, rule);
  return db.transaction(async (query) => {
    const recorded = Promise.all([
      query(CONCERT_LOCK_SQL, [concertId]),
      query(
        `update queue_entry set state = 'EXPIRED', ended_at = case when token = any($2::text[]) then to_timestamp($3 / 1000.0) else now() end
         where (token = any($2::text[]) and state <> 'EXPIRED') or (concert_id = $1 and state = 'ACTIVE' and active_expire_at <= to_timestamp($3 / 1000.0))`,
        [concertId, [...expired, ...abandoned], atMs],
      ),
      query<{ active: number; ended: number }>(
        `select (select count(*)::int from queue_entry where concert_id = $1 and state = 'ACTIVE') as active,
           (select count(*)::int from queue_entry where concert_id = $1 and ended_at > now() - make_interval(secs => $2)) as ended`,
        [concertId, LEAVE_IN_FLIGHT_S],
      ),
    ]);
    const early = expected === 0 ? undefined : headFor(expected);
    early?.catch(() => undefined);
    const [, , [line]] = await recorded;
    // Slots Redis still holds for tokens the record ended lately wait for the next step: filled
    // now, Redis's active set would stand above the cap until those leaves reach it. Otherwise
    // the record decides: more slots than Redis saw free (an end Redis lost, older than that)
    // are filled from a longer head.
    const held = line?.active ?? 0;
    const unapplied = Math.min(Math.max(0, redisHeld - held), line?.ended ?? 0);
    const slots = admissionsThisTick({ active: held + unapplied }, rule);
    const head = slots === 0 ? undefined : early && slots <= expected ? await early : await headFor(slots);
    const [admitted, active] = await Promise.all([
      head ? query(ADMIT, [concertId, rule.activeTtlMs / 1000, slots, ...head]) : [],
      query<{ token: string; activeExpireMs: number }>(
        `select token, floor(extract(epoch from active_expire_at) * 1000)::float8 as "activeExpireMs" from queue_entry
         where concert_id = $1 and state = 'ACTIVE' and ($2 or admitted_at >= now() - make_interval(secs => $3))`,
        [concertId, repairAll, RECENT_ADMISSIONS_S],
      ),
    ]);
    return {
      admitted: admitted.map((r) => r.token as string),
      decidedMs: admitted[0]?.decidedMs as number | undefined,
      expired,
      abandoned,
      active,
    };
  });
}
