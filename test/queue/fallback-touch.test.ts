// While Redis is down admission pauses, and nobody loses a place for not polling (only Redis
// sees the polls, and it is not there to see them): a silent waiting user keeps the place through
// 2.5 × WAITING_TOKEN_TTL. Back on Redis, the line is filled in again with every waiting user
// freshly seen, and admission resumes from its head.

import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startTestAppOnPrivateRedis } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const TTL_SECONDS = 2;

test("Redis down: nobody is admitted or dropped for silence; back on Redis the head of the line is admitted", async (t) => {
  t.timeout(60_000);
  const { app, redis, stop } = await startTestAppOnPrivateRedis("queue_fallback_touch", {
    maxActiveUsers: 1,
    admissionIntervalMs: 200,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: TTL_SECONDS,
  });
  try {
    const queue = app.grpc(QueueService);
    const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    const status = async (token: string) => (await queue.getQueueStatus({ token })).status!;
    const holder = (await queue.joinQueue({ concertId, userId: "holder" })).token;
    await waitFor(async () => (await status(holder)).state === QueueState.ACTIVE, { message: () => "holder admitted" });
    await redis.kill();
    const silent = (await queue.joinQueue({ concertId, userId: "silent" })).token;
    const next = (await queue.joinQueue({ concertId, userId: "next" })).token;
    t.is(app.app.waitingRoom.mode.state, "postgres");
    await queue.leaveQueue({ token: holder });
    await sleep(TTL_SECONDS * 2500);
    t.like(await status(silent), { state: QueueState.WAITING, position: 1n });
    t.like(await status(next), { state: QueueState.WAITING, position: 2n });

    await redis.start();
    await waitFor(async () => (await status(silent)).state === QueueState.ACTIVE, {
      timeoutMs: 20_000,
      message: () => "admission resumed",
    });
    t.like(await status(next), { state: QueueState.WAITING, position: 1n });
  } finally {
    await stop();
  }
});
