// One admission step of a concert, decided in PostgreSQL, the record, in the order of Redis's line:
// under the concert lock, Redis's sweep says who left, the record ends them and the expired, counts
// the slots taken and admits the head of the line as admission-rule.ts says. Steps run only while
// Redis misses nothing (queue-mode.ts): while it is down admission pauses, so no user is admitted
// by two stores, and the cap holds everywhere.
import { admissionsThisTick, type AdmissionRule } from "./admission-rule.js";
import { CONCERT_LOCK_SQL, type QueueDb } from "./queue-db.js";
import type { RedisQueue } from "./redis-queue.js";

// The head of Redis's line up to the first token PostgreSQL has no row for yet (a join whose group
// commit has not landed keeps its place until it does). clock_timestamp(): now() is before the lock
// wait. The outer `state = 'WAITING'` is not redundant: LeaveQueue takes no concert lock, and when a
// leave commits while this UPDATE waits for the row, READ COMMITTED rechecks only outer conditions.
const ADMIT = `
with t as (select clock_timestamp() as at),
head as (select token, ord from unnest($4::text[]) with ordinality as h(token, ord)),
gap as (select min(ord) as ord from head h where not exists (select 1 from queue_entry q where q.token = h.token))
update queue_entry set state = 'ACTIVE', admitted_at = t.at, active_expire_at = t.at + make_interval(secs => $2)
from t where state = 'WAITING' and token in (
  select h.token from head h join queue_entry q using (token)
  where q.state = 'WAITING' and q.concert_id = $1 and h.ord < coalesce((select ord from gap), 9223372036854775807)
  order by h.ord limit $3)
returning token`;

/** Returns who was admitted and ended, and every ACTIVE token with its expiry for Redis to hold (repairing a lost Redis half). */
export function admit(db: QueueDb, concertId: string, rule: AdmissionRule, redis: Pick<RedisQueue, "sweep" | "head">) {
  return db.transaction(async (query) => {
    await query(CONCERT_LOCK_SQL, [concertId]);
    // Redis names the expired and the abandoned (only it sees the polls); dropped there after the commit.
    const { expired, abandoned, atMs } = await redis.sweep(concertId, rule);
    await query(
      `update queue_entry set state = 'EXPIRED', ended_at = case when token = any($2::text[]) then to_timestamp($3 / 1000.0) else now() end
       where (token = any($2::text[]) and state <> 'EXPIRED') or (concert_id = $1 and state = 'ACTIVE' and active_expire_at <= now())`,
      [concertId, [...expired, ...abandoned], atMs],
    );
    const active = `select token, floor(extract(epoch from active_expire_at) * 1000)::float8 as "activeExpireMs"
      from queue_entry where concert_id = $1 and state = 'ACTIVE'`;
    const slots = admissionsThisTick({ active: (await query(active, [concertId])).length }, rule);
    const head = slots === 0 ? [] : await redis.head(concertId, slots + abandoned.length);
    const admitted = slots === 0 ? [] : await query(ADMIT, [concertId, rule.activeTtlMs / 1000, slots, head]);
    return {
      admitted: admitted.map((r) => r.token as string),
      expired,
      abandoned,
      active: await query<{ token: string; activeExpireMs: number }>(active, [concertId]),
    };
  });
}
