// Calls Redis cannot serve, served from PostgreSQL (queue-mode.ts): joins, statuses, leaves, token
// checks, not admission. Writes note their tokens for Redis; joins serialise on the concert lock.

import { CONCERT_LOCK_SQL, type Query, type QueueDb } from "./queue-db.js";
import type { QueueStatus } from "./queue-status.js";
import type { Validation } from "./redis-queue.js";
import { UnavailableError } from "../platform/domain-error.js";

/** Gap between places given here: joins Redis numbered just before it failed, still on their way here, fit in. */
const FALLBACK_SEQ_STEP = 10_000;

const noteMissed = (query: Query, tokens: readonly string[]) =>
  query("insert into queue_missed (token) select unnest($1::text[]) on conflict do nothing", [tokens]);

// Rows in QueueStatus's shape; positions in one pass per concert (row_number), linear in the line.
const STATUS_SELECT = `
with wanted as (select * from queue_entry where token = any($1::text[])),
line as (
  select token, concert_id, row_number() over (partition by concert_id order by seq, token) as position
  from queue_entry where state = 'WAITING' and concert_id in (select concert_id from wanted)),
totals as (select concert_id, count(*) as total from line group by concert_id),
actives as (select concert_id, count(*) as active from queue_entry
  where state = 'ACTIVE' and active_expire_at > now() and concert_id in (select concert_id from wanted) group by concert_id),
shown as (select *, case when state = 'ACTIVE' and active_expire_at <= now() then 'EXPIRED' else state::text end as shown
  from wanted)
select q.token, q.concert_id as "concertId", q.user_id as "userId", q.shown as state,
  case when q.shown = 'ACTIVE' then floor(extract(epoch from q.active_expire_at) * 1000) else 0 end::float8 as "activeExpireMs",
  coalesce(l.position, 0)::int as position,
  coalesce(t.total, 0)::int as "totalWaiting",
  coalesce(a.active, 0)::int as "activeUsers",
  floor(extract(epoch from now()) * 1000)::float8 as "nowMs"
from shown q left join line l on l.token = q.token left join totals t on t.concert_id = q.concert_id
  left join actives a on a.concert_id = q.concert_id`;

export type PgQueue = ReturnType<typeof createPgQueue>;

export interface JoinRequest {
  concertId: string;
  userId: string;
  freshToken: string;
  /** The user's place in a sale-start prequeue (prequeue.ts), if they join while it forms. */
  prequeueSeq?: string | undefined;
}

export function createPgQueue(db: QueueDb) {
  const statuses = (tokens: readonly string[], query: Query = db.query) => query<QueueStatus>(STATUS_SELECT, [tokens]);

  const queue = {
    /**
     * Joins in one transaction (this side's group commit): the concerts' locks, one INSERT for
     * every newcomer, one read of the live rows, one status read. `requests` are in arrival
     * order, which becomes the order in line; a user asking twice gets one place, one already in
     * line keeps theirs. Statuses come back in the order of `requests`.
     */
    async joinMany(requests: readonly JoinRequest[]): Promise<QueueStatus[]> {
      const key = (r: { concertId: string; userId: string }) => `${r.concertId.toLowerCase()}/${r.userId}`;
      const firsts = new Map<string, JoinRequest>();
      for (const r of requests) if (!firsts.has(key(r))) firsts.set(key(r), r);
      const rows = [...firsts.values()];
      const [concerts, users] = [rows.map((r) => r.concertId), rows.map((r) => r.userId)];
      return db.transaction(async (query) => {
        for (const concertId of new Set(concerts.toSorted())) await query(CONCERT_LOCK_SQL, [concertId]);
        const pairs = `unnest($1::uuid[], $2::text[]) as i(concert_id, user_id)`;
        await query(
          `update queue_entry q set state = 'EXPIRED', ended_at = now() from ${pairs} where q.concert_id = i.concert_id
           and q.user_id = i.user_id and q.state = 'ACTIVE' and q.active_expire_at <= now()`,
          [concerts, users],
        );
        // The live-user index keeps a user's place: one already in line, or one whose live row the
        // group commit of a process on Redis (it takes no concert lock) wrote meanwhile. A prequeue
        // place (prequeue.ts, negative) is taken as it is; the tail counts the FIFO places alone.
        await query(
          `insert into queue_entry (token, concert_id, user_id, seq, state)
           select i.token, i.concert_id, i.user_id, coalesce(i.prequeue_seq, top.seq + ${FALLBACK_SEQ_STEP}
             * row_number() over (partition by i.concert_id order by i.ord)), 'WAITING'
           from unnest($1::text[], $2::uuid[], $3::text[], $4::bigint[]) with ordinality as i(token, concert_id, user_id, prequeue_seq, ord),
             lateral (select greatest(coalesce(max(seq), 0), 0) as seq from queue_entry where concert_id = i.concert_id) top
           on conflict do nothing`,
          [rows.map((r) => r.freshToken), concerts, users, rows.map((r) => r.prequeueSeq ?? null)],
        );
        const live = await query<{ token: string; concert_id: string; user_id: string }>(
          `select q.token, q.concert_id, q.user_id from queue_entry q join ${pairs} using (concert_id, user_id)
           where q.state in ('WAITING', 'ACTIVE')`,
          [concerts, users],
        );
        // A live row that ended again before this read (a leave in between): rare; the caller retries.
        if (live.length < rows.length) throw new UnavailableError("the join could not be recorded; retry");
        await noteMissed(query, [...live.map((row) => row.token)]);
        const tokenOf = new Map(live.map((r) => [key({ concertId: r.concert_id, userId: r.user_id }), r.token]));
        const byToken = new Map((await statuses([...tokenOf.values()], query)).map((s) => [s.token, s]));
        return requests.map((r) => byToken.get(tokenOf.get(key(r))!)!);
      });
    },

    status: async (token: string): Promise<QueueStatus | undefined> => (await statuses([token]))[0],

    /** Whether the record has a row for the token, in any state (one index lookup, no position). */
    async hasRow(token: string): Promise<boolean> {
      return (await db.query("select 1 from queue_entry where token = $1", [token])).length > 0;
    },

    /** The user's live place in the concert's line (waiting or admitted), if any. */
    async livePlace(concertId: string, userId: string): Promise<QueueStatus | undefined> {
      const rows = await db.query<{ token: string }>(
        "select token from queue_entry where concert_id = $1 and user_id = $2 and state in ('WAITING', 'ACTIVE') limit 1",
        [concertId, userId],
      );
      return rows[0] && (await statuses([rows[0].token]))[0];
    },

    /** Statuses of many tokens of one concert: a WatchQueue tick's read. */
    statuses,

    /** Ends the token's place or slot here alone (while Redis serves, end-committer.ts writes ends). */
    async end(token: string): Promise<void> {
      await db.transaction(async (query) => {
        await query(
          "update queue_entry set state = 'EXPIRED', ended_at = now() where token = $1 and state <> 'EXPIRED'",
          [token],
        );
        await noteMissed(query, [token]);
      });
    },

    /** A token check (a status: it shows an ACTIVE token past its expiry as EXPIRED). */
    async validate(token: string): Promise<Validation> {
      const found = await queue.status(token);
      if (!found) return { kind: "unknown" };
      const { state, concertId, userId, activeExpireMs } = found;
      if (state === "ACTIVE") return { kind: "active", record: { state, concertId, userId, activeExpireMs } };
      return state === "EXPIRED" ? { kind: "expired", owner: { concertId, userId } } : { kind: "waiting" };
    },
  };
  return queue;
}
