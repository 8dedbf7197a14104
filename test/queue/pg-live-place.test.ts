// A user's live place as PostgreSQL alone tells it (the fallback's answer to a re-join while the
// waiting room is CLOSED): waiting or admitted, never an ended one, never another concert's.

import { randomUUID } from "node:crypto";
import test from "ava";
import { createPgQueue, type PgQueue } from "../../src/queue/pg-queue.js";
import { newQueueToken } from "../../src/queue/queue-token.js";
import { openQueueDb, type QueueDbFixture } from "../helpers/queue-db.js";

let fixture: QueueDbFixture;
let queue: PgQueue;

test.before(async () => {
  fixture = await openQueueDb("pglive");
  queue = createPgQueue(fixture.db);
});

test.after.always(async () => {
  await fixture?.stop();
});

test("livePlace finds a waiting or admitted place of the user in that concert only", async (t) => {
  const [concertId, otherConcert] = [randomUUID(), randomUUID()];
  const [joined] = await queue.joinMany([{ concertId, userId: "ann", freshToken: newQueueToken() }]);
  t.like(await queue.livePlace(concertId, "ann"), { token: joined!.token, state: "WAITING", position: 1 });
  t.is(await queue.livePlace(otherConcert, "ann"), undefined);
  t.is(await queue.livePlace(concertId, "ben"), undefined);

  await fixture.db.query(
    "update queue_entry set state = 'ACTIVE', active_expire_at = now() + interval '1 hour' where token = $1",
    [joined!.token],
  );
  t.like(await queue.livePlace(concertId, "ann"), { token: joined!.token, state: "ACTIVE" });

  await queue.end(joined!.token);
  t.is(await queue.livePlace(concertId, "ann"), undefined);
});
