// Copies Redis's admissions and expiries into queue_entry so PostgreSQL can take over (and later
// rebuild Redis) after an outage. The scripts append every change to a per-concert journal in
// the same atomic step; each tick claims the journal under a lease (one process at a time per
// concert), writes it in two statements and acknowledges. A failed write is retried next tick; a
// crashed process delays the copy until its lease runs out; nothing is lost, and the writes are
// idempotent. A join's row
// may still be in a group commit when its admission is copied: such entries are retried.

import { randomBytes } from "node:crypto";
import type { Logger } from "../platform/logger.js";
import type { PgQueue } from "./pg-queue.js";
import type { RedisQueue } from "./redis-queue.js";

/** How long an entry is retried; a join not committed by then failed and was never acknowledged. */
const RETRY_FOR_MS = 60_000;
/** Entries claimed per concert and tick. */
const CLAIM = 5000;
const LEASE_MS = 30_000;

export interface QueueMirror {
  /** Writes one concert's journal to PostgreSQL. */
  drain(concertId: string): Promise<void>;
}

export function createQueueMirror(pg: PgQueue, redisQueue: RedisQueue, logger: Logger): QueueMirror {
  const owner = randomBytes(8).toString("hex");
  return {
    async drain(concertId) {
      const keys = redisQueue.keys.concert(concertId);
      const entries = await redisQueue.scripts.claimJournal(keys, CLAIM, LEASE_MS, owner);
      if (entries.length === 0) return;
      const admitted = entries.filter((e) => e.kind === "ACTIVE");
      const ended = entries.filter((e) => e.kind === "EXPIRED");
      let missing: Set<string>;
      try {
        missing = new Set([
          ...(admitted.length > 0 ? await pg.markActive(admitted) : []),
          ...(ended.length > 0 ? await pg.markExpired(ended) : []),
        ]);
      } catch (error) {
        // The claim stays: this process claims it again next tick, any other once the lease runs out.
        logger.warn(
          { err: (error as Error).message, entries: entries.length },
          "mirroring queue changes to PostgreSQL failed; will retry",
        );
        return;
      }
      const now = Date.now();
      const retry = entries.filter((e) => missing.has(e.token) && now - e.atMs < RETRY_FOR_MS);
      const givenUp = entries.filter((e) => missing.has(e.token)).length - retry.length;
      if (givenUp > 0)
        logger.warn({ entries: givenUp }, "queue entries never reached PostgreSQL; their joins were not acknowledged");
      await redisQueue.scripts.ackJournal(keys, owner, retry);
    },
  };
}
