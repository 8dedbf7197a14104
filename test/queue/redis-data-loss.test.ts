// Redis loses its data without a single call failing (FLUSHALL here; a fast restart or a cluster
// node that comes back empty look the same), and a JoinQueue arrives before the admission loop
// notices. The join must not start the line again at 1 ahead of everyone PostgreSQL has waiting:
// it is taken on PostgreSQL, the record, and Redis is filled from there in order.

import test from "ava";
import { Redis } from "ioredis";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { startTestAppOnPrivateRedis, type TestApp } from "../helpers/app.js";
import type { PrivateRedis } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/wait.js";

let redis: PrivateRedis;
let app: TestApp;
let stack: Awaited<ReturnType<typeof startTestAppOnPrivateRedis>> | undefined;

test.before(async () => {
  // Admission once a minute: the loop, which would notice the loss, stays out of the way.
  stack = await startTestAppOnPrivateRedis("queue_data_loss", {
    maxActiveUsers: 1,
    admissionIntervalMs: 60_000,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  ({ app, redis } = stack);
});

test.after.always(async () => {
  await stack?.stop();
});

test("a join right after Redis lost its data queues behind everyone already waiting", async (t) => {
  t.timeout(60_000);
  const queue = app.grpc(QueueService);
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const line: string[] = [];
  for (let i = 0; i < 5; i++) line.push((await queue.joinQueue({ concertId, userId: `early-${i}` })).token);
  const admin = new Redis(redis.url);
  try {
    await admin.flushall();
    const late = await queue.joinQueue({ concertId, userId: "late" });
    t.is(late.status!.state, QueueState.WAITING);
    t.is(late.status!.position, 6n, "behind the five who joined before the loss");
    line.push(late.token);
    const keys = createQueueKeys(app.config.redisKeyPrefix);
    await waitFor(
      async () =>
        app.app.waitingRoom.mode.state === "redis" &&
        (await admin.zcard(keys.concert(concertId).waiting)) === line.length,
      {
        timeoutMs: 20_000,
        message: () => `mode ${app.app.waitingRoom.mode.state}`,
      },
    );
    t.deepEqual(await admin.zrange(keys.concert(concertId).waiting, "0", "-1"), line, "same people, same order");
    for (const [i, token] of line.entries())
      t.is((await queue.getQueueStatus({ token })).status!.position, BigInt(i + 1));
    // Back on Redis, the next join lines up behind them too.
    t.is((await queue.joinQueue({ concertId, userId: "later" })).status!.position, 7n);
  } finally {
    admin.disconnect();
  }
});
