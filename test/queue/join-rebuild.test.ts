// A join that Redis took, whose PostgreSQL write was still on its way while Redis lost its data
// and was rebuilt from PostgreSQL: once acknowledged, it is in Redis's line too. The write is
// held back by a second connection's uncommitted row of the same user (the live-user index
// makes the group commit wait for it) until the rebuild is done.

import test from "ava";
import pg from "pg";
import { Redis } from "ioredis";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { startTestAppOnPrivateRedis } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

test("a join acknowledged after a rebuild that missed its row is in Redis's line", async (t) => {
  t.timeout(60_000);
  const { app, redis, stop } = await startTestAppOnPrivateRedis("queue_join_rebuild", {
    maxActiveUsers: 1,
    admissionIntervalMs: 50,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  const blocker = new pg.Client({ connectionString: app.config.databaseUrl });
  await blocker.connect();
  const admin = new Redis(redis.url);
  try {
    const queue = app.grpc(QueueService);
    const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    const first = (await queue.joinQueue({ concertId, userId: "first" })).token;
    await waitFor(async () => (await queue.getQueueStatus({ token: first })).status!.state === QueueState.ACTIVE, {
      message: () => "first admitted",
    });

    await blocker.query("begin");
    await blocker.query(
      "insert into queue_entry (token, concert_id, user_id, seq, state) values ('held-back', $1, 'late', 1, 'WAITING')",
      [concertId],
    );
    const joining = queue.joinQueue({ concertId, userId: "late" });
    await waitFor(
      async () => {
        const { rows } = await blocker.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        );
        return rows[0]!.n > 0;
      },
      { message: () => "the join's write never waited" },
    );

    // Redis loses everything; the app notices and fills Redis from PostgreSQL (without the join,
    // whose row is not committed yet): the marker is back.
    await admin.flushall();
    const marker = createQueueKeys(app.config.redisKeyPrefix).rebuiltAt;
    await waitFor(async () => (await admin.get(marker)) !== null && app.app.waitingRoom.mode.state === "redis", {
      timeoutMs: 20_000,
      message: () => `mode ${app.app.waitingRoom.mode.state}`,
    });
    await blocker.query("rollback");

    const late = await joining;
    t.is(late.status!.state, QueueState.WAITING);
    const status = (await queue.getQueueStatus({ token: late.token })).status!;
    t.is(status.state, QueueState.WAITING, "the acknowledged join is in Redis's line");
    t.is(status.position, 1n);
  } finally {
    await blocker.query("rollback").catch(() => undefined);
    await blocker.end();
    admin.disconnect();
    await stop();
  }
});
