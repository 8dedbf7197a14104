// Group commit of the ends written to PostgreSQL while Redis serves (a paid user's slot given
// back, LeaveQueue), as join-committer.ts does for joins: a commit and a round trip per window
// instead of one per end. Still written before Redis hears of the end, as one at a time.

import { createBatcher } from "../platform/batcher.js";
import type { QueueDb } from "./queue-db.js";

const END_ONE = "update queue_entry set state = 'EXPIRED', ended_at = now() where token = $1 and state <> 'EXPIRED'";
// Rows in token order, as concurrent batches then lock them in one order.
const END_MANY = `update queue_entry set state = 'EXPIRED', ended_at = now()
  where token = any($1::text[]) and state <> 'EXPIRED'`;

export interface EndCommitter {
  /** Resolves once the token's row says EXPIRED (an unknown token too). */
  commit(token: string): Promise<void>;
  /** Writes what is pending and waits for every batch in flight. */
  drain(): Promise<void>;
}

export function createEndCommitter(db: QueueDb, window = { maxItems: 500, maxDelayMs: 20 }): EndCommitter {
  const batcher = createBatcher<string, void>({
    ...window,
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
  return { commit: (token) => batcher.submit(token), drain: () => batcher.drain() };
}
