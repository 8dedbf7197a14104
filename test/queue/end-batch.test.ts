// Ends of places while Redis serves (a paid user's slot, LeaveQueue) are group-committed: the
// ends given within one window cost PostgreSQL one statement and one commit, and each caller
// returns only once its row says EXPIRED.

import { randomUUID } from "node:crypto";
import test from "ava";
import { createJoinCommitter } from "../../src/queue/join-committer.js";
import { createEndCommitter } from "../../src/queue/end-committer.js";
import type { QueueDb } from "../../src/queue/queue-db.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";

let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("end_batch", { poolMax: 8 });
});

test.after.always(async () => {
  await fixture?.stop();
});

test("concurrent ends are one UPDATE, and each returns after its row is ended", async (t) => {
  const sent: string[] = [];
  const counting: QueueDb = {
    query: (text, params) => {
      sent.push(text);
      return fixture.db.query(text, params);
    },
    transaction: (fn) => fixture.db.transaction(fn),
  };
  const ends = createEndCommitter(counting);
  const committer = createJoinCommitter({ db: fixture.db, maxRows: 100, maxDelayMs: 5 });
  const concertId = randomUUID();
  const tokens = Array.from({ length: 30 }, () => randomUUID().replaceAll("-", ""));
  await Promise.all(
    tokens.map((token, i) =>
      committer.commit({
        token,
        concertId,
        userId: `user-${i}`,
        seq: String(i + 1),
        state: "ACTIVE",
        joinedAtMs: Date.now(),
        activeExpireMs: Date.now() + 600_000,
      }),
    ),
  );
  sent.length = 0;
  // A token ended twice and one nobody holds are answered like the others.
  await Promise.all([...tokens, tokens[0]!, "no-such-token"].map((token) => ends.commit(token)));
  t.is(sent.length, 1, sent.join("\n"));
  const rows = await fixture.db.query<{ state: string }>(
    "select state from queue_entry where concert_id = $1 and ended_at is not null",
    [concertId],
  );
  t.is(rows.length, tokens.length);
  t.true(rows.every((row) => row.state === "EXPIRED"));
  await ends.drain();
});
