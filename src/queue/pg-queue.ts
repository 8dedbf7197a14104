// The waiting room on PostgreSQL alone, for while Redis is unreachable, plus the writes that
// mirror Redis's admissions and expiries into queue_entry. Fallback joins and fallback
// admission of one concert serialise on an advisory lock, which keeps FIFO and the cap with any
// number of processes; they are slower than Redis but bounded, and only last for the outage.

import type { MergeRow } from "./queue-scripts.js";
import { CONCERT_LOCK_SQL, type Query, type QueueDb } from "./queue-db.js";
import type { QueueState } from "./queue-entry.entity.js";
import type { QueueStatus } from "./queue-status.js";
import type { Validation } from "./redis-queue.js";
import { UnavailableError } from "../platform/domain-error.js";
import { admissionsThisTick, type AdmissionRule } from "./admission-rule.js";

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

interface MergeRowSql {
  token: string;
  concert_id: string;
  user_id: string;
  seq: string;
  state: QueueState;
  expire_ms: number | null;
  max_seq: string;
}

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

export interface FallbackAdmission {
  admitted: string[];
  /** ACTIVE tokens past their expiry. */
  expired: string[];
  /** WAITING tokens not seen for the waiting TTL. */
  abandoned: string[];
}

export type PgQueue = ReturnType<typeof createPgQueue>;

export function createPgQueue(db: QueueDb, options: { waitingTtlSeconds: number }) {
  const touchEverySeconds = touchEveryMs(options.waitingTtlSeconds) / 1000;
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

  /**
   * Runs a mirroring UPDATE over `input` (a select of token, expire, at) and returns the tokens
   * that have no row yet. One statement, one snapshot: a row committed between the update and a
   * separate existence check would otherwise count as written without being updated.
   */
  async function mirror(update: string, params: unknown[]): Promise<string[]> {
    const rows = await db.query<{ token: string }>(
      `with input as (select * from unnest($1::text[], $2::float8[], $3::float8[]) as i(token, expire, at)),
         updated as (${update} returning q.token)
       select token from input where token not in (select token from updated)
         and token not in (select q.token from queue_entry q join input using (token))`,
      params,
    );
    return rows.map((r) => r.token);
  }

  async function mergeRows(
    where: string,
    params: unknown[],
  ): Promise<Map<string, { nextSeqFloor: string; rows: MergeRow[] }>> {
    const rows = await db.query<MergeRowSql>(
      `with picked as (
         select token, concert_id, user_id, seq, state, floor(extract(epoch from active_expire_at) * 1000)::float8 as expire_ms
         from queue_entry where ${where}),
       maxes as (select concert_id, max(seq)::text as max_seq from queue_entry
         where concert_id in (select concert_id from picked) group by concert_id)
       select p.token, p.concert_id, p.user_id, p.seq::text as seq, p.state, p.expire_ms, m.max_seq
       from picked p join maxes m using (concert_id) order by p.seq, p.token`,
      params,
    );
    const byConcert = new Map<string, { nextSeqFloor: string; rows: MergeRow[] }>();
    for (const r of rows) {
      let group = byConcert.get(r.concert_id);
      if (!group) byConcert.set(r.concert_id, (group = { nextSeqFloor: r.max_seq, rows: [] }));
      group.rows.push({
        token: r.token,
        userId: r.user_id,
        seq: r.seq,
        state: r.state,
        activeExpireMs: r.expire_ms ?? 0,
      });
    }
    return byConcert;
  }

  return {
    /**
     * Fallback joins of one concert in one transaction (the group commit of the PostgreSQL-only
     * waiting room): one lock, one INSERT for every newcomer, one status read. `requests` are in
     * arrival order, which becomes the order in line; a user asking twice gets one place, and a
     * user already in line keeps theirs. Statuses come back in the order of `requests`.
     */
    async joinMany(
      concertId: string,
      requests: readonly { userId: string; freshToken: string; prequeueSeq?: string | undefined }[],
    ): Promise<QueueStatus[]> {
      const freshTokens = new Map<string, string>();
      const prequeueSeqs = new Map<string, string | undefined>();
      for (const { userId, freshToken, prequeueSeq } of requests) {
        if (freshTokens.has(userId)) continue;
        freshTokens.set(userId, freshToken);
        prequeueSeqs.set(userId, prequeueSeq);
      }
      const users = [...freshTokens.keys()];
      return db.transaction(async (query) => {
        await query(CONCERT_LOCK_SQL, [concertId]);
        await query(
          `update queue_entry set state = 'EXPIRED', ended_at = now()
           where concert_id = $1 and user_id = any($2::text[]) and state = 'ACTIVE' and active_expire_at <= now()`,
          [concertId, users],
        );
        const live = await query<{ user_id: string; token: string }>(
          `select user_id, token from queue_entry where concert_id = $1 and user_id = any($2::text[]) and ${LIVE}`,
          [concertId, users],
        );
        const tokenOf = new Map(live.map((row) => [row.user_id, row.token]));
        const newcomers = users.filter((userId) => !tokenOf.has(userId));
        if (newcomers.length > 0) {
          const tokens = newcomers.map((userId) => freshTokens.get(userId)!);
          // The concert lock keeps out other fallback joins but not the group commit of a process
          // still on Redis (it switches at its next tick): a live row of one of these users that
          // it commits meanwhile wins, and that user gets its token. A prequeue place (prequeue.ts,
          // negative) is taken as it is; the tail is counted from the FIFO places alone.
          const inserted = await query<{ user_id: string; token: string }>(
            `insert into queue_entry (token, concert_id, user_id, seq, state, last_seen_at)
             select i.token, $1, i.user_id, coalesce(i.prequeue_seq, top.seq + ${FALLBACK_SEQ_STEP} * i.ord), 'WAITING', now()
             from unnest($2::text[], $3::text[], $4::bigint[]) with ordinality as i(token, user_id, prequeue_seq, ord),
                  (select greatest(coalesce(max(seq), 0), 0) as seq from queue_entry where concert_id = $1) top
             on conflict do nothing
             returning user_id, token`,
            [concertId, tokens, newcomers, newcomers.map((userId) => prequeueSeqs.get(userId) ?? null)],
          );
          for (const row of inserted) tokenOf.set(row.user_id, row.token);
          const raced = newcomers.filter((userId) => !tokenOf.has(userId));
          if (raced.length > 0) {
            const winners = await query<{ user_id: string; token: string }>(
              `select user_id, token from queue_entry where concert_id = $1 and user_id = any($2::text[]) and ${LIVE}`,
              [concertId, raced],
            );
            for (const row of winners) tokenOf.set(row.user_id, row.token);
            const lost = raced.filter((userId) => !tokenOf.has(userId));
            // The winning row ended again before this read (a leave in between): rare; the caller retries.
            if (lost.length > 0) throw new UnavailableError("the join could not be recorded; retry");
          }
        }
        const byToken = new Map(
          (await statuses([...tokenOf.values()], false, query)).map((status) => [status.token, status]),
        );
        return requests.map(({ userId }) => byToken.get(tokenOf.get(userId)!)!);
      });
    },

    async status(token: string, touch: boolean): Promise<QueueStatus | undefined> {
      return (await statuses([token], touch))[0];
    },

    /** Statuses of many tokens of one concert: the fallback read of a WatchQueue tick. */
    statuses,

    async leave(token: string): Promise<QueueStatus | undefined> {
      await db.query(
        `update queue_entry set state = 'EXPIRED', ended_at = now() where token = $1 and state <> 'EXPIRED'`,
        [token],
      );
      return (await statuses([token], false))[0];
    },

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

    /**
     * One admission step of a concert on PostgreSQL (admission-rule.ts), under the concert lock
     * that fallback joins take too. Last-seen times written while Redis was healthy are stale,
     * so nobody counts as abandoned for a full TTL after `fallbackSinceMs`.
     */
    async admit(concertId: string, rule: AdmissionRule, fallbackSinceMs: number): Promise<FallbackAdmission> {
      return db.transaction(async (query) => {
        await query(CONCERT_LOCK_SQL, [concertId]);
        // RETURNING sees the new state; an admission time tells an ACTIVE token from a WAITING one.
        const ended = await query<{ token: string; was_active: boolean }>(
          `update queue_entry set state = 'EXPIRED', ended_at = now()
           where concert_id = $1 and ((state = 'ACTIVE' and active_expire_at <= now())
             or (state = 'WAITING' and greatest(last_seen_at, to_timestamp($2 / 1000.0)) < now() - make_interval(secs => $3)))
           returning token, admitted_at is not null as was_active`,
          [concertId, fallbackSinceMs, rule.waitingTtlMs / 1000],
        );
        const [line] = await query<{ active: number }>(
          "select count(*)::int as active from queue_entry where concert_id = $1 and state = 'ACTIVE'",
          [concertId],
        );
        // clock_timestamp(), not now(): now() is when the transaction began, before the lock wait
        // and before the releases this statement counts, so admitted_at would precede them.
        // The outer `state = 'WAITING'` is not redundant: LeaveQueue does not take the concert
        // lock, and when a leave commits while this UPDATE waits for the row, READ COMMITTED
        // rechecks only the outer conditions against the new row (the subquery keeps its
        // snapshot). Without it the user who left would be made ACTIVE, taking a slot.
        const admitted = await query<{ token: string }>(
          `update queue_entry set state = 'ACTIVE', admitted_at = clock_timestamp(), active_expire_at = clock_timestamp() + make_interval(secs => $2)
           where state = 'WAITING' and token in (select token from queue_entry where concert_id = $1 and state = 'WAITING' order by seq, token limit $3)
           returning token`,
          [concertId, rule.activeTtlMs / 1000, admissionsThisTick({ active: line?.active ?? 0 }, rule)],
        );
        return {
          admitted: admitted.map((r) => r.token),
          expired: ended.filter((r) => r.was_active).map((r) => r.token),
          abandoned: ended.filter((r) => !r.was_active).map((r) => r.token),
        };
      });
    },

    /** Users waiting and active in a concert's line (a count over its entries: not for every call). */
    async lineCounts(concertId: string): Promise<{ waiting: number; active: number }> {
      const [line] = await db.query<{ waiting: string; active: string }>(
        `select count(*) filter (where state = 'WAITING') as waiting, count(*) filter (where state = 'ACTIVE') as active
         from queue_entry where concert_id = $1 and state in ('WAITING', 'ACTIVE')`,
        [concertId],
      );
      return { waiting: Number(line?.waiting ?? 0), active: Number(line?.active ?? 0) };
    },

    /**
     * Mirrors admissions; returns the tokens whose row is not there yet. An expiry mirrored
     * first (entries of different ticks may be claimed out of order) keeps its EXPIRED state but
     * still gets its admission time.
     */
    markActive(admitted: readonly { token: string; activeExpireMs: number; atMs: number }[]): Promise<string[]> {
      return mirror(
        `update queue_entry q set state = case when q.state = 'WAITING' then 'ACTIVE' else q.state end,
           admitted_at = to_timestamp(i.at / 1000.0), active_expire_at = to_timestamp(i.expire / 1000.0)
         from input i where q.token = i.token and q.admitted_at is null`,
        [admitted.map((a) => a.token), admitted.map((a) => a.activeExpireMs), admitted.map((a) => a.atMs)],
      );
    },

    /**
     * Mirrors expiries, leaves and releases at the time Redis made them; returns the tokens whose
     * row is not there yet. The earliest time wins, whatever the order of arrival: a repeated
     * LeaveQueue (the first answer lost with its process) reports the later time of the repeat,
     * while the journal still holds the time the slot was really freed.
     */
    markExpired(ended: readonly { token: string; atMs: number }[]): Promise<string[]> {
      return mirror(
        `update queue_entry q set state = 'EXPIRED', ended_at = least(q.ended_at, to_timestamp(i.at / 1000.0))
         from input i where q.token = i.token
           and (q.state <> 'EXPIRED' or q.ended_at is null or q.ended_at > to_timestamp(i.at / 1000.0))`,
        [ended.map((e) => e.token), ended.map(() => 0), ended.map((e) => e.atMs)],
      );
    },

    /**
     * Rows a rebuild merges into Redis, by concert in FIFO order, with the sequence number new
     * joins must exceed: every live row plus rows ended within `recentSeconds` (their token
     * records may still say ACTIVE).
     */
    rowsToMerge(recentSeconds: number) {
      return mergeRows(`${LIVE} or ended_at > now() - make_interval(secs => $1)`, [recentSeconds]);
    },

    /**
     * Records (or refreshes) that `processId` serves from PostgreSQL: because Redis failed it, or
     * (`following`) only because another process's mark sent it there.
     */
    async markFallback(processId: string, sinceMs: number, following: boolean): Promise<void> {
      await db.query(
        `insert into queue_fallback (process_id, since, seen_at, following) values ($1, to_timestamp($2 / 1000.0), now(), $3)
         on conflict (process_id) do update set seen_at = now(), following = excluded.following`,
        [processId, sinceMs, following],
      );
    },

    async clearFallback(processId: string): Promise<void> {
      await db.query("delete from queue_fallback where process_id = $1", [processId]);
    },

    /**
     * Other processes' marks fresher than `freshSeconds`: whether one of them was failed by Redis
     * (`cutOff`: everyone goes to PostgreSQL), and whether any is still on PostgreSQL at all
     * (`any`: a process back on Redis holds admission until the last one is back too).
     */
    async otherFallbackMarks(processId: string, freshSeconds: number): Promise<{ cutOff: boolean; any: boolean }> {
      const [row] = await db.query<{ cut_off: boolean; any: boolean }>(
        `select coalesce(bool_or(not following), false) as cut_off, count(*) > 0 as any
         from queue_fallback where process_id <> $1 and seen_at > now() - make_interval(secs => $2)`,
        [processId, freshSeconds],
      );
      return { cutOff: row?.cut_off === true, any: row?.any === true };
    },

    /** The rows of `tokens`, grouped as rowsToMerge does. */
    rowsOfTokens(tokens: readonly string[]) {
      return mergeRows("token = any($1::text[])", [tokens]);
    },
  };
}
