// Which store serves the waiting room, for every process: one row in PostgreSQL (queue_store).
// PostgreSQL is the record (every place in line, admission and end); Redis is an index of it that
// serves while it is healthy. A process that leaves Redis sets the row to PostgreSQL, and one that
// Redis fails keeps `cut_off_at` fresh while that lasts; every process follows the row. Writes
// made on PostgreSQL hold the row (FOR KEY SHARE) and are refused once it says Redis, and the way
// back reads every live row into Redis and flips the row in one transaction that holds it FOR
// UPDATE: no write made on PostgreSQL can miss the Redis that serves after it.

import { UnavailableError } from "../platform/domain-error.js";
import type { Query, QueueDb } from "./queue-db.js";
import type { MergeRow } from "./queue-scripts.js";

/** A write meant for the PostgreSQL fallback found that Redis serves again; the caller retries there. */
export class StoreMovedError extends UnavailableError {
  override name = "StoreMovedError";
  constructor() {
    super("the waiting room moved back to Redis; retry");
  }
}

/**
 * Holds the row for a PostgreSQL fallback write; throws StoreMovedError once Redis serves. KEY
 * SHARE: a cut-off's refresh of the row does not wait for the writes, the way back's FOR UPDATE does.
 */
export async function requirePostgres(query: Query): Promise<void> {
  const [row] = await query<{ store: string }>("select store from queue_store where id = 1 for key share");
  if (row?.store !== "postgres") throw new StoreMovedError();
}

/** Live rows and rows ended within `recentSeconds` (their token records may still say ACTIVE), per concert in line order. */
export type RestoreRows = Map<string, { nextSeqFloor: string; rows: MergeRow[] }>;

// Per concert: the rows in line order, as MERGE takes them, and the sequence number new joins must exceed.
const RESTORE_ROWS = `
select concert_id, (select max(seq) from queue_entry q where q.concert_id = p.concert_id)::text as next_seq_floor,
  json_agg(json_build_object('token', token, 'userId', user_id, 'seq', seq::text, 'state', state,
    'activeExpireMs', coalesce(floor(extract(epoch from active_expire_at) * 1000), 0)) order by seq, token) as rows
from queue_entry p where state in ('WAITING', 'ACTIVE') or ended_at > now() - make_interval(secs => $1)
group by concert_id`;

export type QueueStore = ReturnType<typeof createQueueStore>;

export function createQueueStore(db: QueueDb, options: { processId: string; freshSeconds: number }) {
  const { processId, freshSeconds } = options;
  return {
    /** Whether the row says PostgreSQL serves. */
    async postgresServes(): Promise<boolean> {
      const [row] = await db.query<{ store: string }>("select store from queue_store where id = 1");
      return row?.store === "postgres";
    },

    /** PostgreSQL serves everyone; `cutOff`: because Redis failed this process (rewritten while that lasts). */
    async toPostgres(cutOff: boolean): Promise<void> {
      if (!cutOff) return void (await db.query("update queue_store set store = 'postgres' where id = 1"));
      await db.query("update queue_store set store = 'postgres', cut_off_at = now(), cut_off_by = $1 where id = 1", [
        processId,
      ]);
    },

    /**
     * The way back, under the row's lock: while any cut-off is fresh (this process's own too, so
     * two cut-off processes cannot hand the row back and forth) nothing; else, if the row says
     * PostgreSQL or Redis lost the record (`redisHolds` false), hands every row to `fill` and
     * flips the row to Redis. Returns whether Redis serves now.
     */
    async restore(
      recentSeconds: number,
      redisHolds: () => Promise<boolean>,
      fill: (rows: RestoreRows) => Promise<void>,
    ): Promise<boolean> {
      return db.transaction(async (query) => {
        const [row] = await query<{ store: string; fresh: boolean }>(
          `select store, coalesce(cut_off_at > now() - make_interval(secs => $1), false) as fresh
           from queue_store where id = 1 for update`,
          [freshSeconds],
        );
        if (row?.fresh) return false;
        if (row?.store !== "postgres" && (await redisHolds())) return true;
        const rows = await query<{ concert_id: string; next_seq_floor: string; rows: MergeRow[] }>(RESTORE_ROWS, [
          recentSeconds,
        ]);
        await fill(new Map(rows.map((r) => [r.concert_id, { nextSeqFloor: r.next_seq_floor, rows: r.rows }])));
        await query("update queue_store set store = 'redis', cut_off_at = null, cut_off_by = null where id = 1");
        return true;
      });
    },
  };
}
