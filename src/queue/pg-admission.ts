// One admission step of a concert on PostgreSQL, the record, whichever store serves: under the
// concert lock, end what is over, count the slots taken, admit the head of the line as
// admission-rule.ts says. While Redis serves it says (inside the lock) who left the line and who
// is next; on the fallback PostgreSQL knows both itself.

import { admissionsThisTick, type AdmissionRule } from "./admission-rule.js";
import { CONCERT_LOCK_SQL, type QueueDb } from "./queue-db.js";
import { requirePostgres } from "./queue-store.js";

/** What Redis's sweep ended (it alone knows who still polls while it serves), at its clock. */
export interface Swept {
  expired: string[];
  abandoned: string[];
  atMs: number;
}

/** Redis's side of an admission step while it serves, called under the concert lock. */
export interface RedisLine {
  /** Ends the expired and the abandoned in Redis; PostgreSQL records them before it admits. */
  sweep(): Promise<Swept>;
  /** The first `n` tokens of Redis's line: Redis numbers the line while it serves. */
  head(n: number): Promise<string[]>;
}

/** Where an admission step learns who left the line and who is next: Redis, or (fallback) PostgreSQL alone. */
export type AdmitFrom = { redis: RedisLine } | { fallbackSinceMs: number };

export interface Admission {
  admitted: string[];
  /** ACTIVE tokens past their expiry. */
  expired: string[];
  /** WAITING tokens not seen for the waiting TTL. */
  abandoned: string[];
  /** With a sweep: every ACTIVE token and its expiry, for Redis to hold (a step whose Redis half was lost is repaired). */
  active: { token: string; activeExpireMs: number }[];
}

// The head of the line: by sequence number on the fallback; while Redis serves, in Redis's order
// up to the first token PostgreSQL has no row for yet (a join whose group commit has not landed
// keeps its place at the head until it does).
const PICK_BY_SEQ = `select token from queue_entry where concert_id = $1 and state = 'WAITING' order by seq, token limit $3`;
const PICK_FROM_HEAD = `
with head as (select token, ord from unnest($4::text[]) with ordinality as h(token, ord)),
gap as (select min(ord) as ord from head h where not exists (select 1 from queue_entry q where q.token = h.token))
select h.token from head h join queue_entry q using (token)
where q.state = 'WAITING' and q.concert_id = $1 and h.ord < coalesce((select ord from gap), 9223372036854775807)
order by h.ord limit $3`;
// clock_timestamp(), not now(): now() is when the transaction began, before the lock wait and
// before the releases this statement counts, so admitted_at would precede them; read once, so one
// step's admissions share it. The outer `state = 'WAITING'` is not redundant: LeaveQueue does not
// take the concert lock, and when a leave commits while this UPDATE waits for the row, READ
// COMMITTED rechecks only the outer conditions against the new row (the subquery keeps its
// snapshot). Without it the user who left would be made ACTIVE, taking a slot.
const ADMIT = (pick: string) => `
with t as (select clock_timestamp() as at)
update queue_entry set state = 'ACTIVE', admitted_at = t.at, active_expire_at = t.at + make_interval(secs => $2)
from t where state = 'WAITING' and token in (${pick}) returning token`;

/**
 * One admission step of a concert (admission-rule.ts), under the concert lock that fallback
 * joins take too. On the fallback, last-seen times written while Redis served are stale, so
 * nobody counts as abandoned for a full TTL after `fallbackSinceMs`.
 */
export async function admit(db: QueueDb, concertId: string, rule: AdmissionRule, from: AdmitFrom): Promise<Admission> {
  const redis = "redis" in from ? from.redis : undefined;
  const fallbackSinceMs = "fallbackSinceMs" in from ? from.fallbackSinceMs : 0;
  return db.transaction(async (query) => {
    if (!redis) await requirePostgres(query);
    await query(CONCERT_LOCK_SQL, [concertId]);
    const swept = await redis?.sweep();
    if (swept && swept.expired.length + swept.abandoned.length > 0)
      await query(
        "update queue_entry set state = 'EXPIRED', ended_at = to_timestamp($2 / 1000.0) where token = any($1::text[]) and state <> 'EXPIRED'",
        [[...swept.expired, ...swept.abandoned], swept.atMs],
      );
    // RETURNING sees the new state; an admission time tells an ACTIVE token from a WAITING one.
    const ended = await query<{ token: string; was_active: boolean }>(
      `update queue_entry set state = 'EXPIRED', ended_at = now()
       where concert_id = $1 and ((state = 'ACTIVE' and active_expire_at <= now()) or (state = 'WAITING' and $4
         and greatest(last_seen_at, to_timestamp($2 / 1000.0)) < now() - make_interval(secs => $3)))
       returning token, admitted_at is not null as was_active`,
      [concertId, fallbackSinceMs, rule.waitingTtlMs / 1000, !redis],
    );
    const [line] = await query<{ active: number }>(
      "select count(*)::int as active from queue_entry where concert_id = $1 and state = 'ACTIVE'",
      [concertId],
    );
    const slots = admissionsThisTick({ active: line?.active ?? 0 }, rule);
    const ttl = rule.activeTtlMs / 1000;
    const admitted =
      slots === 0
        ? []
        : redis
          ? await query<{ token: string }>(ADMIT(PICK_FROM_HEAD), [concertId, ttl, slots, await redis.head(slots)])
          : await query<{ token: string }>(ADMIT(PICK_BY_SEQ), [concertId, ttl, slots]);
    const active = redis
      ? await query<{ token: string; expire_ms: number }>(
          "select token, floor(extract(epoch from active_expire_at) * 1000)::float8 as expire_ms from queue_entry where concert_id = $1 and state = 'ACTIVE'",
          [concertId],
        )
      : [];
    return {
      admitted: admitted.map((r) => r.token),
      expired: swept?.expired ?? ended.filter((r) => r.was_active).map((r) => r.token),
      abandoned: swept?.abandoned ?? ended.filter((r) => !r.was_active).map((r) => r.token),
      active: active.map((r) => ({ token: r.token, activeExpireMs: r.expire_ms })),
    };
  });
}
