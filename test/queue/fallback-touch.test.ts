// In the PostgreSQL fallback, a waiting user who keeps polling keeps their place however short
// WAITING_TOKEN_TTL is, and one who stops polling loses it: last-seen is written often enough.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startTestAppOnPrivateRedis, type TestApp } from "../helpers/app.js";
import type { PrivateRedis } from "../helpers/redis-server.js";
import { setTimeout as sleep } from "node:timers/promises";

const TTL_SECONDS = 2;
let redis: PrivateRedis;
let app: TestApp;
let stack: Awaited<ReturnType<typeof startTestAppOnPrivateRedis>> | undefined;

test.before(async () => {
  stack = await startTestAppOnPrivateRedis("queue_fallback_touch", {
    maxActiveUsers: 1,
    admissionIntervalMs: 200,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: TTL_SECONDS,
  });
  ({ app, redis } = stack);
});

test.after.always(async () => {
  await stack?.stop();
});

test("fallback: polling every 250 ms keeps a place through 2.5 × WAITING_TOKEN_TTL; silence loses it", async (t) => {
  t.timeout(60_000);
  const queue = app.grpc(QueueService);
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  await queue.joinQueue({ concertId, userId: "holder" }); // takes the only slot
  await redis.kill();
  const poller = (await queue.joinQueue({ concertId, userId: "poller" })).token;
  const silent = (await queue.joinQueue({ concertId, userId: "silent" })).token;
  t.is(app.app.waitingRoom.mode.current, "fallback");
  const until = Date.now() + TTL_SECONDS * 2500;
  while (Date.now() < until) {
    t.is((await queue.getQueueStatus({ token: poller })).status!.state, QueueState.WAITING);
    await sleep(250);
  }
  t.is((await queue.getQueueStatus({ token: silent })).status!.state, QueueState.EXPIRED);
  t.is((await queue.getQueueStatus({ token: poller })).status!.position, 1n);
});
