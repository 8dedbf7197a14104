// Writes another process made on PostgreSQL alone while Redis failed it (pg-queue.ts, run here by
// hand on the app's database, as that process runs it): the app's next check merges them into
// Redis, in line order, and deletes their notes only then; admission, paused for nobody else,
// then admits in join order, and a leave made on PostgreSQL alone is no longer in Redis's line.

import test from "ava";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { createPgQueue } from "../../src/queue/pg-queue.js";
import { createQueueDb } from "../../src/queue/queue-db.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { testAppFixture } from "../helpers/app.js";
import { admitUser } from "../helpers/queue.js";
import { waitFor } from "../helpers/wait.js";

const fixture = testAppFixture(
  "queue_missed_writes",
  { maxActiveUsers: 1, admissionIntervalMs: 50, activeTokenTtlSeconds: 600, waitingTokenTtlSeconds: 600 },
  4,
);

test("joins and leaves made on PostgreSQL alone reach Redis's line at the next check, in order", async (t) => {
  const { app, concertId } = fixture;
  const queue = app.grpc(QueueService);
  const holder = await admitUser(app, concertId, "holder");
  const before = (await queue.joinQueue({ concertId, userId: "before" })).token;

  // The process cut off from Redis: its joins and leaves, each noted for Redis.
  const elsewhere = createPgQueue(await createQueueDb(app.app.orm, () => {}));
  const [cutOff, leaver] = await elsewhere.joinMany([
    { concertId, userId: "cut-off", freshToken: "c0".repeat(16) },
    { concertId, userId: "leaver", freshToken: "d0".repeat(16) },
  ]);
  t.deepEqual([cutOff!.position, leaver!.position], [2, 3], "placed behind the line in the record");
  await elsewhere.end(leaver!.token);
  const sql = (text: string) => app.app.orm.em.getConnection().execute<{ n: number }[]>(text);
  // Within a check interval a join here could still stand ahead of them (docs/architecture.md).
  await waitFor(async () => (await sql("select count(*)::int as n from queue_missed"))[0]!.n === 0, {
    message: () => "the notes merged and deleted",
  });
  const after = (await queue.joinQueue({ concertId, userId: "after" })).token;
  const keys = createQueueKeys(app.config.redisKeyPrefix).concert(concertId);
  t.deepEqual(await app.app.redis.zrange(keys.waiting, "0", "-1"), [before, cutOff!.token, after]);
  t.is((await queue.getQueueStatus({ token: leaver!.token })).status!.state, QueueState.EXPIRED);

  const admitted: string[] = [];
  for (const token of [holder, before, cutOff!.token]) {
    await queue.leaveQueue({ token });
    const next = [before, cutOff!.token, after][admitted.length]!;
    await waitFor(async () => (await queue.getQueueStatus({ token: next })).status!.state === QueueState.ACTIVE, {
      message: () => `${next} admitted`,
    });
    admitted.push(next);
  }
  t.deepEqual(admitted, [before, cutOff!.token, after], "admitted in join order");
});
