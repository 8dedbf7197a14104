import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { AdmissionState, QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { startTestAppOnPrivateRedis, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";
import { withToken } from "../helpers/queue.js";
import type { PrivateRedis } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/wait.js";

const CAP = 5;

let redis: PrivateRedis;
let app: TestApp;
let stack: Awaited<ReturnType<typeof startTestAppOnPrivateRedis>> | undefined;

test.before(async () => {
  stack = await startTestAppOnPrivateRedis("queue_outage", {
    maxActiveUsers: CAP,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  ({ app, redis } = stack);
});

test.after.always(async () => {
  await stack?.stop();
});

async function mode(): Promise<string | undefined> {
  const text = await (await fetch(`${app.connectUrl}/metrics`)).text();
  return /^queue_store_mode\{mode="(\w+)"\} 1$/m.exec(text)?.[1];
}

const BURST = 100;

test("Redis killed mid-run: joins and token checks go on via PostgreSQL, admission pauses; after a restart nothing acknowledged is lost or reordered", async (t) => {
  t.timeout(90_000);
  const queue = app.grpc(QueueService);
  const booking = app.grpc(BookingService);
  const concertId = (await booking.listConcerts({})).concerts[0]!.id;
  const status = async (token: string) => (await queue.getQueueStatus({ token })).status!;

  const before: string[] = [];
  for (let i = 0; i < 20; i++) before.push((await queue.joinQueue({ concertId, userId: `before-${i}` })).token);
  await waitFor(async () => (await status(before[CAP - 1]!)).state === QueueState.ACTIVE, {
    message: () => "first users admitted",
  });
  const active = before.slice(0, CAP);
  const waitingBefore = before.slice(CAP);

  await redis.kill();

  // Joins keep working, each within a bounded time, and queue up behind everyone already waiting.
  const during: string[] = [];
  for (let i = 0; i < 10; i++) {
    const started = Date.now();
    const joined = await queue.joinQueue({ concertId, userId: `during-${i}` });
    t.true(Date.now() - started < 2000, `join ${i} took ${Date.now() - started} ms`);
    t.is(joined.status!.state, QueueState.WAITING);
    t.is(joined.status!.position, BigInt(waitingBefore.length + i + 1));
    during.push(joined.token);
  }
  t.is(await mode(), "postgres");

  // A burst while Redis is down is group-committed: a few transactions, not one per join; every
  // joiner gets its own place right behind the line (no ties), and a user asking twice gets one.
  const statementsBefore = app.app.waitingRoom.pgStatements;
  const burstUsers = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
  const burst = await Promise.all(
    [...burstUsers, "burst-0", "burst-1"].map((userId) => queue.joinQueue({ concertId, userId })),
  );
  const statements = app.app.waitingRoom.pgStatements - statementsBefore;
  t.true(statements < BURST, `${statements} statements for ${BURST} fallback joins`);
  t.log(`${statements} statements`);
  t.is(burst[BURST]!.token, burst[0]!.token);
  t.is(burst[BURST + 1]!.token, burst[1]!.token);
  const burstLine = burst.slice(0, BURST).sort((a, b) => Number(a.status!.position - b.status!.position));
  t.deepEqual(
    burstLine.map((j) => Number(j.status!.position)),
    burstLine.map((_, i) => waitingBefore.length + during.length + i + 1),
  );
  during.push(...burstLine.map((j) => j.token));

  const again = await queue.joinQueue({ concertId, userId: "during-3" });
  t.is(again.token, during[3]!, "joins stay idempotent in fallback");
  t.is((await queue.joinQueue({ concertId, userId: "before-7" })).token, before[7]!);

  // Token checks and status go on from PostgreSQL.
  t.is((await booking.listSchedules({ concertId }, withToken(active[0]!))).schedules.length, 2);
  await expectError(
    t,
    booking.listSchedules({ concertId }, withToken(waitingBefore[0]!)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_NOT_ACTIVE",
  );
  await expectError(
    t,
    booking.listSchedules({ concertId }, withToken("ab".repeat(16))),
    Code.Unauthenticated,
    "QUEUE_TOKEN_INVALID",
  );
  t.is((await status(waitingBefore[2]!)).position, 3n);

  // Admission pauses while Redis is down: two leave, nobody takes their slots yet, every place is
  // kept and the wait is unknown.
  await queue.leaveQueue({ token: active[0]! });
  await queue.leaveQueue({ token: active[1]! });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const head = await status(waitingBefore[0]!);
  t.like(head, { state: QueueState.WAITING, position: 1n, waitTimeKnown: false });
  t.is(head.admissionState, AdmissionState.PAUSED);
  await expectError(
    t,
    booking.listSchedules({ concertId }, withToken(active[0]!)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );

  // Redis comes back empty: it is filled from PostgreSQL before it serves again, and the next two
  // in line get the slots.
  await redis.start();
  await waitFor(async () => (await mode()) === "redis", { timeoutMs: 20_000, message: () => "back on Redis" });
  await waitFor(async () => (await status(waitingBefore[1]!)).state === QueueState.ACTIVE, {
    message: () => "admission resumed",
  });
  t.is((await status(waitingBefore[0]!)).state, QueueState.ACTIVE);
  const keys = createQueueKeys(app.config.redisKeyPrefix).concert(concertId);
  const expectedLine = [...waitingBefore.slice(2), ...during];
  t.deepEqual(await app.app.redis.zrange(keys.waiting, "0", "-1"), expectedLine, "same people, same order");
  t.deepEqual(
    (await app.app.redis.zrange(keys.active, "0", "-1")).sort(),
    [...active.slice(2), ...waitingBefore.slice(0, 2)].sort(),
  );
  for (const [i, token] of expectedLine.entries()) t.is((await status(token)).position, BigInt(i + 1));
  t.is((await booking.listSchedules({ concertId }, withToken(waitingBefore[0]!))).schedules.length, 2);
  await expectError(
    t,
    booking.listSchedules({ concertId }, withToken(active[1]!)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );

  const after = await queue.joinQueue({ concertId, userId: "after-0" });
  t.is(after.status!.position, BigInt(expectedLine.length + 1), "new joins line up behind everyone");
  t.is((await queue.joinQueue({ concertId, userId: "during-5" })).token, during[5]!);

  // A restart fast enough that no call fails still loses Redis's data; the admission loop
  // notices the missing marker and the waiting room is rebuilt the same way.
  await redis.kill();
  await redis.start();
  const line = [...expectedLine, after.token];
  await waitFor(
    async () => (await mode()) === "redis" && (await app.app.redis.zcard(keys.waiting).catch(() => 0)) === line.length,
    {
      timeoutMs: 20_000,
      message: () => "rebuilt after a quick restart",
    },
  );
  t.deepEqual(await app.app.redis.zrange(keys.waiting, "0", "-1"), line);
  t.is((await booking.listSchedules({ concertId }, withToken(waitingBefore[0]!))).schedules.length, 2);
});
