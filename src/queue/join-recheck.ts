// A join whose PostgreSQL write ended long after Redis numbered it may have missed a rebuild of
// Redis: Redis may have lost its data meanwhile and been filled again from PostgreSQL before the
// row landed. A rebuild reads PostgreSQL only 200 ms after Redis was found behind (queue-mode.ts),
// so only slow joins are checked: those whose writes ended together are asked about in one script call per concert,
// and only the tokens Redis no longer holds are merged back (the merge reads each one's record,
// so a token that left meanwhile stays gone). A flash crowd's joins are all slow, and a merge per
// join cost more Redis calls than the join itself.

import { createBatcher } from "../platform/batcher.js";
import type { Logger } from "../platform/logger.js";
import type { MergeRow } from "./queue-scripts.js";
import type { RedisQueue } from "./redis-queue.js";

export interface JoinRecheck {
  /** Resolves once Redis is known to hold the join, or it was merged back (failures are logged). */
  recheck(concertId: string, row: MergeRow): Promise<void>;
  drain(): Promise<void>;
}

const highestSeq = (rows: readonly MergeRow[]) =>
  rows.reduce((max, row) => (BigInt(row.seq) > BigInt(max) ? row.seq : max), rows[0]!.seq);

export function createJoinRecheck(deps: {
  redisQueue: Pick<RedisQueue, "missing" | "merge">;
  logger: Logger;
}): JoinRecheck {
  const { redisQueue, logger } = deps;

  async function recheckConcert(concertId: string, rows: MergeRow[]): Promise<void> {
    try {
      const missing = new Set(
        await redisQueue.missing(
          concertId,
          rows.map((row) => row.token),
        ),
      );
      const lost = rows.filter((row) => missing.has(row.token));
      if (lost.length > 0) await redisQueue.merge(concertId, highestSeq(lost), lost);
    } catch (error) {
      // Redis failed meanwhile: the rows are in PostgreSQL, which the way back restores from.
      logger.warn(
        { err: (error as Error).message, concertId, joins: rows.length },
        "could not recheck slow joins in Redis",
      );
    }
  }

  const batcher = createBatcher<{ concertId: string; row: MergeRow }, void>({
    maxItems: 1000,
    maxDelayMs: 1,
    async run(items) {
      const byConcert = new Map<string, MergeRow[]>();
      for (const { concertId, row } of items) {
        const rows = byConcert.get(concertId) ?? [];
        rows.push(row);
        byConcert.set(concertId, rows);
      }
      await Promise.all([...byConcert].map(([concertId, rows]) => recheckConcert(concertId, rows)));
      return items.map(() => undefined);
    },
  });

  return { recheck: (concertId, row) => batcher.submit({ concertId, row }), drain: () => batcher.drain() };
}
