// The waiting room's record in PostgreSQL: every admission step (whichever store serves), and
// the whole waiting room while Redis is unreachable. Joins and admission of one concert on
// PostgreSQL serialise on an advisory lock, which keeps FIFO and the cap with any number of
// processes; fallback writes also hold the store row (queue-store.ts), so none lands after the
// way back to Redis read the record.

import { CONCERT_LOCK_SQL, type Query, type QueueDb } from "./queue-db.js";
import type { QueueState } from "./queue-entry.entity.js";
import type { QueueStatus } from "./queue-status.js";
import type { Validation } from "./redis-queue.js";
import { UnavailableError } from "../platform/domain-error.js";
import type { AdmissionRule } from "./admission-rule.js";
import { admit, type AdmitFrom } from "./pg-admission.js";
import { requirePostgres } from "./queue-store.js";
import { createBatcher } from "../platform/batcher.js";

/**
 * Gap between fallback sequence numbers. Joins taken by Redis just before it failed may still be
 * on their way to PostgreSQL with sequence numbers above the current maximum; leaving room for
 * them keeps them ahead of the first fallback joins instead of tying with them.
 */
const FALLBACK_SEQ_STEP = 10_000;
/**
 * How often a polling waiting user's last-seen time is written in fallback: at most every 5 s,
 * and at least three times per WAITING_TOKEN_TTL (as the watch streams do), so a user who keeps
 * polling is never taken for gone.
 */
export const touchEveryMs = (waitingTtlSeconds: number) => Math.min(5000, (waitingTtlSeconds * 1000) / 3);

const LIVE = "state in ('WAITING', 'ACTIVE')";

interface StatusRow {
  token: string;
  concert_id: string;
  user_id: string;
  state: QueueState;
  expire_ms: number | null;
  position: number;
  total: number;
  active: number;
  now_ms: number;
}

// Positions come from one pass over each concert's waiting rows (row_number), so reading many
// watchers' statuses in a fallback WatchQueue tick stays linear in the length of the line.
const STATUS_SELECT = `
with wanted as (select * from queue_entry where token = any($1::text[])),
line as (
  select token, concert_id, row_number() over (partition by concert_id order by seq, token) as position
  from queue_entry where state = 'WAITING' and concert_id in (select concert_id from wanted)),
totals as (select concert_id, count(*) as total from line group by concert_id),
actives as (select concert_id, count(*) as active from queue_entry
  where state = 'ACTIVE' and active_expire_at > now() and concert_id in (select concert_id from wanted) group by concert_id)
select q.token, q.concert_id, q.user_id,
  case when q.state = 'ACTIVE' and q.active_expire_at <= now() then 'EXPIRED' else q.state end as state,
  floor(extract(epoch from q.active_expire_at) * 1000)::float8 as expire_ms,
  coalesce(l.position, 0)::int as position,
  coalesce(t.total, 0)::int as total,
  coalesce(a.active, 0)::int as active,
  floor(extract(epoch from now()) * 1000)::float8 as now_ms
from wanted q left join line l on l.token = q.token left join totals t on t.concert_id = q.concert_id
  left join actives a on a.concert_id = q.concert_id`;

function toStatus(row: StatusRow): QueueStatus {
  return {
    token: row.token,
    concertId: row.concert_id,
    userId: row.user_id,
    state: row.state,
    position: row.position,
    totalWaiting: row.total,
    activeExpireMs: row.state === "ACTIVE" ? (row.expire_ms ?? 0) : 0,
    nowMs: row.now_ms,
    activeUsers: row.active,
  };
}

export type PgQueue = ReturnType<typeof createPgQueue>;

const END_ONE = "update queue_entry set state = 'EXPIRED', ended_at = now() where token = $1 and state <> 'EXPIRED'";
// Rows in token order, as concurrent batches then lock them in one order.
const END_MANY = `update queue_entry set state = 'EXPIRED', ended_at = now()
  where token = any($1::text[]) and state <> 'EXPIRED'`;

/**
 * Group commit of the ends that go to PostgreSQL while Redis serves (a slot given back after a
 * payment, LeaveQueue): a commit and a round trip per window instead of one per end. Still
 * written before Redis hears of the end, as one at a time.
 */
const END_BATCH = { maxItems: 500, maxDelayMs: 20 };

export interface JoinRequest {
  userId: string;
  freshToken: string;
  /** The user's place in a sale-start prequeue (prequeue.ts), if they join while it forms. */
  prequeueSeq?: string | undefined;
}

export function createPgQueue(db: QueueDb, options: { waitingTtlSeconds: number }) {
  const touchEverySeconds = touchEveryMs(options.waitingTtlSeconds) / 1000;
  const ends = createBatcher<string, void>({
    ...END_BATCH,
    async run(tokens) {
      try {
        await db.query(END_MANY, [[...new Set(tokens)].sort()]);
        return tokens.map(() => undefined);
      } catch {
        // A batch that failed (a deadlock with an admission step expiring the same rows, say)
        // is retried one end at a time, so each gets its own outcome.
        return Promise.all(
          tokens.map((token) =>
            db.query(END_ONE, [token]).then(
              () => undefined,
              (e: Error) => e,
            ),
          ),
        );
      }
    },
  });
  async function statuses(tokens: readonly string[], touch: boolean, query: Query = db.query): Promise<QueueStatus[]> {
    if (touch) {
      // Best effort, and never waiting: a row that fallback admission (or another touch) has
      // locked is skipped. Waiting would deadlock with admission, which locks the head of the
      // line in another order while holding the concert lock that joins need.
      await query(
        `update queue_entry set last_seen_at = now()
         where state = 'WAITING' and token in (
           select token from queue_entry
           where token = any($1::text[]) and state = 'WAITING' and last_seen_at < now() - make_interval(secs => $2)
           for no key update skip locked)`,
        [tokens, touchEverySeconds],
      );
    }
    return (await query<StatusRow>(STATUS_SELECT, [tokens])).map(toStatus);
  }

  const queue = {
    /**
     * Fallback joins of one concert in one transaction (the group commit of the PostgreSQL-only
     * waiting room): one lock, one INSERT for every newcomer, one status read. `requests` are in
     * arrival order, which becomes the order in line; a user asking twice gets one place, and a
     * user already in line keeps theirs. Statuses come back in the order of `requests`.
     */
    async joinMany(concertId: string, requests: readonly JoinRequest[]): Promise<QueueStatus[]> {
      const byUser = new Map<string, JoinRequest>();
      for (const request of requests) if (!byUser.has(request.userId)) byUser.set(request.userId, request);
      const users = [...byUser.keys()];
      const first = users.map((userId) => byUser.get(userId)!);
      return db.transaction(async (query) => {
        await requirePostgres(query);
        await query(CONCERT_LOCK_SQL, [concertId]);
        await query(
          `update queue_entry set state = 'EXPIRED', ended_at = now()
           where concert_id = $1 and user_id = any($2::text[]) and state = 'ACTIVE' and active_expire_at <= now()`,
          [concertId, users],
        );
        // The live-user index keeps a user's place: one already in line, or one whose live row the
        // group commit of a process still on Redis (it switches at its next tick, and takes no
        // concert lock) wrote meanwhile. A prequeue place (prequeue.ts, negative) is taken as it
        // is; the tail is counted from the FIFO places alone.
        await query(
          `insert into queue_entry (token, concert_id, user_id, seq, state, last_seen_at)
           select i.token, $1, i.user_id, coalesce(i.prequeue_seq, top.seq + ${FALLBACK_SEQ_STEP} * i.ord), 'WAITING', now()
           from unnest($2::text[], $3::text[], $4::bigint[]) with ordinality as i(token, user_id, prequeue_seq, ord),
                (select greatest(coalesce(max(seq), 0), 0) as seq from queue_entry where concert_id = $1) top
           on conflict do nothing`,
          [concertId, first.map((r) => r.freshToken), users, first.map((r) => r.prequeueSeq ?? null)],
        );
        const live = await query<{ user_id: string; token: string }>(
          `select user_id, token from queue_entry where concert_id = $1 and user_id = any($2::text[]) and ${LIVE}`,
          [concertId, users],
        );
        // A live row that ended again before this read (a leave in between): rare; the caller retries.
        if (live.length < users.length) throw new UnavailableError("the join could not be recorded; retry");
        const tokenOf = new Map(live.map((row) => [row.user_id, row.token]));
        const byToken = new Map((await statuses([...tokenOf.values()], false, query)).map((s) => [s.token, s]));
        return requests.map(({ userId }) => byToken.get(tokenOf.get(userId)!)!);
      });
    },

    /** Fallback joins of any concerts, in arrival order: joinMany per concert, one outcome per request. */
    async joinBatch(requests: readonly (JoinRequest & { concertId: string })[]): Promise<(QueueStatus | Error)[]> {
      const outcomes: (QueueStatus | Error)[] = [];
      const byConcert = Map.groupBy(
        requests.map((request, index) => ({ ...request, index })),
        (request) => request.concertId,
      );
      await Promise.all(
        [...byConcert].map(([concertId, group]) =>
          queue.joinMany(concertId, group).then(
            (joined) => group.forEach((request, i) => (outcomes[request.index] = joined[i]!)),
            (error: unknown) => group.forEach((request) => (outcomes[request.index] = error as Error)),
          ),
        ),
      );
      return outcomes;
    },

    async status(token: string, touch: boolean): Promise<QueueStatus | undefined> {
      return (await statuses([token], touch))[0];
    },

    /** Statuses of many tokens of one concert: the fallback read of a WatchQueue tick. */
    statuses,

    /** Ends the token's place or slot in the record; `fallback` when PostgreSQL serves. */
    async end(token: string, fallback: boolean): Promise<void> {
      if (!fallback) return ends.submit(token);
      await db.transaction(async (query) => {
        await requirePostgres(query);
        await query(END_ONE, [token]);
      });
    },

    /** Writes the ends waiting for their batch. */
    drain: () => ends.drain(),

    async validate(token: string): Promise<Validation> {
      const [row] = await db.query<{
        state: QueueState;
        concert_id: string;
        user_id: string;
        expire_ms: number | null;
        live: boolean;
      }>(
        `select state, concert_id, user_id, floor(extract(epoch from active_expire_at) * 1000)::float8 as expire_ms,
           active_expire_at > now() as live
         from queue_entry where token = $1`,
        [token],
      );
      if (!row) return { kind: "unknown" };
      if (row.state === "WAITING") return { kind: "waiting" };
      if (row.state === "EXPIRED" || !row.live)
        return { kind: "expired", owner: { concertId: row.concert_id, userId: row.user_id } };
      return {
        kind: "active",
        record: { state: "ACTIVE", concertId: row.concert_id, userId: row.user_id, activeExpireMs: row.expire_ms ?? 0 },
      };
    },

    async concerts(): Promise<string[]> {
      const rows = await db.query<{ concert_id: string }>(`select distinct concert_id from queue_entry where ${LIVE}`);
      return rows.map((r) => r.concert_id);
    },

    /** One admission step of a concert (pg-admission.ts). */
    admit: (concertId: string, rule: AdmissionRule, from: AdmitFrom) => admit(db, concertId, rule, from),

    /** Users waiting and active in a concert's line (a count over its entries: not for every call). */
    async lineCounts(concertId: string): Promise<{ waiting: number; active: number }> {
      const [line] = await db.query<{ waiting: string; active: string }>(
        `select count(*) filter (where state = 'WAITING') as waiting, count(*) filter (where state = 'ACTIVE') as active
         from queue_entry where concert_id = $1 and state in ('WAITING', 'ACTIVE')`,
        [concertId],
      );
      return { waiting: Number(line?.waiting ?? 0), active: Number(line?.active ?? 0) };
    },
  };
  return queue;
}
