// The join group commit's statements: a batch of users new to the concert is one INSERT (the
// round trip before their answer); a user whose older place is still live in PostgreSQL (expired
// or left in Redis, not yet recorded) supersedes it in a second round.

import { randomUUID } from "node:crypto";
import test from "ava";
import { createJoinCommitter, type JoinRow } from "../../src/queue/join-committer.js";
import type { QueueDb } from "../../src/queue/queue-db.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";

let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("join_rounds", { poolMax: 4 });
});

test.after.always(async () => {
  await fixture?.stop();
});

function counted(): { db: QueueDb; sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    db: {
      query: (text, params) => {
        sent.push(text.trim().split(/\s+/)[0]!.toLowerCase());
        return fixture.db.query(text, params);
      },
      transaction: (fn) => fixture.db.transaction(fn),
    },
  };
}

const row = (concertId: string, userId: string, seq: number): JoinRow => ({
  token: randomUUID().replaceAll("-", ""),
  concertId,
  userId,
  seq: String(seq),
  state: "WAITING",
  joinedAtMs: Date.now(),
  activeExpireMs: 0,
});

const liveRows = (concertId: string) =>
  fixture.db.query<{ token: string; user_id: string }>(
    "select token, user_id from queue_entry where concert_id = $1 and state in ('WAITING', 'ACTIVE') order by user_id",
    [concertId],
  );

test("a batch of new users is one INSERT", async (t) => {
  const { db, sent } = counted();
  const committer = createJoinCommitter({ db, maxRows: 100, maxDelayMs: 5 });
  const concertId = randomUUID();
  const rows = Array.from({ length: 40 }, (_, i) => row(concertId, `user-${i}`, i + 1));
  await Promise.all(rows.map((r) => committer.commit(r)));
  t.deepEqual(sent, ["insert"]);
  t.is((await liveRows(concertId)).length, 40);
});

test("a join over a live older place of its user supersedes it; a repeated join finds its row", async (t) => {
  const { db, sent } = counted();
  const committer = createJoinCommitter({ db, maxRows: 100, maxDelayMs: 5 });
  const concertId = randomUUID();
  const old = row(concertId, "again", 1);
  const other = row(concertId, "other", 2);
  await Promise.all([committer.commit(old), committer.commit(other)]);
  sent.length = 0;
  const newer = row(concertId, "again", 3);
  await Promise.all([committer.commit(newer), committer.commit(other)]);
  t.deepEqual(
    (await liveRows(concertId)).map((r) => [r.user_id, r.token]),
    [
      ["again", newer.token],
      ["other", other.token],
    ],
  );
  const [ended] = await fixture.db.query<{ state: string }>("select state from queue_entry where token = $1", [
    old.token,
  ]);
  t.is(ended?.state, "EXPIRED");
  t.deepEqual(sent, ["insert", "select", "update", "insert"], "the second round only for the superseding join");
});
