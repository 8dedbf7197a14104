// Group commit of JoinQueue: the PostgreSQL copy of every join is written before the join is
// acknowledged, but concurrent joins from all requests share one multi-row INSERT per window
// (at most maxDelayMs or maxRows), so a flash crowd costs PostgreSQL a few statements per
// thousand joins instead of one transaction each.

import { createBatcher } from "../platform/batcher.js";
import { UnavailableError } from "../platform/domain-error.js";
import type { QueueDb } from "./queue-db.js";
import type { JoinReply } from "./queue-scripts.js";

export interface JoinRow {
  token: string;
  concertId: string;
  userId: string;
  seq: string;
  /** The state Redis reported; a repeated join may find the token already admitted. */
  state: "WAITING" | "ACTIVE";
  joinedAtMs: number;
  /** 0 unless ACTIVE. */
  activeExpireMs: number;
}

/** The PostgreSQL row of a join that Redis numbered (its reply), as recorded before the acknowledgement. */
export function joinRowOf(concertId: string, userId: string, { token, seq, status }: JoinReply): JoinRow {
  return {
    token,
    concertId,
    userId,
    seq,
    state: status.state === "ACTIVE" ? "ACTIVE" : "WAITING",
    joinedAtMs: status.nowMs,
    activeExpireMs: status.activeExpireMs,
  };
}

export interface JoinCommitter {
  /** Resolves once the row is in PostgreSQL (inserted now or already there). */
  commit(row: JoinRow): Promise<void>;
  /** Writes what is pending and waits for every batch in flight. */
  drain(): Promise<void>;
}

// Rows go in (concert, user) order: two processes' batches carrying the same users (a join
// retried through another process) then meet on the live-user index in the same order instead
// of each waiting for the other's uncommitted row.
//
// A join superseding a live row of the same user (the old place expired or was left in Redis
// and the admission step has not recorded that yet) must not be skipped by the partial unique index.
const EXPIRE_SUPERSEDED = `
update queue_entry q set state = 'EXPIRED', ended_at = now()
from unnest($1::text[], $2::uuid[], $3::text[]) as i(token, concert_id, user_id)
where q.concert_id = i.concert_id and q.user_id = i.user_id and q.state in ('WAITING', 'ACTIVE') and q.token <> i.token`;

const INSERT = `
insert into queue_entry (token, concert_id, user_id, seq, state, joined_at, admitted_at, active_expire_at)
select i.token, i.concert_id, i.user_id, i.seq, i.state, to_timestamp(i.joined / 1000.0),
  case when i.state = 'ACTIVE' then to_timestamp(i.joined / 1000.0) end,
  case when i.expire > 0 then to_timestamp(i.expire / 1000.0) end
from unnest($1::text[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::float8[], $7::float8[])
  as i(token, concert_id, user_id, seq, state, joined, expire)
order by i.concert_id, i.user_id
on conflict do nothing
returning token`;

export function createJoinCommitter(options: {
  db: QueueDb;
  maxRows: number;
  maxDelayMs: number;
  onBatch?: (rows: number) => void;
}): JoinCommitter {
  const { db } = options;

  /**
   * Writes the rows (first expiring other live rows of their users with `supersede`); returns
   * those still missing (they met a live row of their user).
   */
  async function insert(rows: JoinRow[], supersede: boolean): Promise<JoinRow[]> {
    const identities = [rows.map((r) => r.token), rows.map((r) => r.concertId), rows.map((r) => r.userId)];
    if (supersede) await db.query(EXPIRE_SUPERSEDED, identities);
    const inserted = await db.query<{ token: string }>(INSERT, [
      ...identities,
      rows.map((r) => r.seq),
      rows.map((r) => r.state),
      rows.map((r) => r.joinedAtMs),
      rows.map((r) => r.activeExpireMs),
    ]);
    const done = new Set(inserted.map((r) => r.token));
    const missing = rows.filter((r) => !done.has(r.token));
    if (missing.length === 0) return [];
    // Repeated joins find their row already there; the others met a live row of their user.
    const present = await db.query<{ token: string }>("select token from queue_entry where token = any($1::text[])", [
      missing.map((r) => r.token),
    ]);
    for (const { token } of present) done.add(token);
    return missing.filter((r) => !done.has(r.token));
  }

  const batcher = createBatcher<JoinRow, void>({
    maxItems: options.maxRows,
    maxDelayMs: options.maxDelayMs,
    async run(rows) {
      options.onBatch?.(rows.length);
      // A crowd's joins are new users: one statement, and a round trip less before their answer
      // (each waits for a busy event loop in a burst). Rows that met a live row of their user
      // supersede it, and get one more round for a race with another process's row.
      let missing = await insert(rows, false);
      for (let round = 0; round < 2 && missing.length > 0; round++) missing = await insert(missing, true);
      const stillMissing = new Set(missing);
      const error = new UnavailableError("the join could not be recorded; retry");
      return rows.map((row) => (stillMissing.has(row) ? error : undefined));
    },
  });

  return { commit: (row) => batcher.submit(row), drain: () => batcher.drain() };
}
