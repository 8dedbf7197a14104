// The prequeue while Redis is down: joins PostgreSQL takes before the opening get their seed's
// place too, nobody is admitted while Redis is down, and once it is back the prequeue is admitted
// in the seed's order (members who joined through Redis before it failed included), then later
// joiners in FIFO order. The admission timer is an hour: the test runs each step.

import test from "ava";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { prequeueSeq } from "../../src/queue/prequeue-order.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { startTestAppOnPrivateRedis, type TestApp } from "../helpers/app.js";
import { steppedClock } from "../helpers/clock.js";
import { waitFor } from "../helpers/wait.js";

const CAP = 2;
const clock = steppedClock();
let app: TestApp;
let stack: Awaited<ReturnType<typeof startTestAppOnPrivateRedis>> | undefined;

test.before(async () => {
  stack = await startTestAppOnPrivateRedis(
    "prequeue_fallback",
    { maxActiveUsers: CAP, admissionIntervalMs: 3_600_000, waitingTokenTtlSeconds: 3600 },
    4,
    { clock },
  );
  ({ app } = stack);
});

test.after.always(async () => {
  await stack?.stop();
});

test.serial("joins taken by the fallback before the opening keep the seed's order", async (t) => {
  const queue = app.grpc(QueueService);
  const db = app.app.orm.em.fork().getConnection();
  const [{ concert_id: concertId }] = await db.execute<[{ concert_id: string }]>(
    "select concert_id from schedule limit 1",
  );
  const opensAtMs = clock().getTime() + 3_600_000;
  await db.execute("update schedule set sale_opens_at = ? where concert_id = ?", [new Date(opensAtMs), concertId]);
  const step = () => app.app.waitingRoom.admission.admitWaitingUsers();

  const tokens = new Map<string, string>();
  const join = async (userId: string, state: QueueState) => {
    const { token, status } = await queue.joinQueue({ concertId, userId });
    t.is(status!.state, state, userId);
    tokens.set(userId, token);
  };
  for (const userId of ["redis-0", "redis-1"]) await join(userId, QueueState.PREQUEUE);
  await stack!.redis.kill();
  for (const userId of ["pg-0", "pg-1", "pg-2", "pg-3"]) await join(userId, QueueState.PREQUEUE);
  t.is(app.app.waitingRoom.mode.state, "postgres");
  await step();
  t.is((await queue.getQueueStatus({ token: tokens.get("pg-0")! })).status!.state, QueueState.PREQUEUE);

  const [{ seed }] = await db.execute<[{ seed: string }]>("select seed from prequeue_seed where concert_id = ?", [
    concertId,
  ]);
  const members = ["redis-0", "redis-1", "pg-0", "pg-1", "pg-2", "pg-3"];
  const seedOrder = members.sort((x, y) => (prequeueSeq(seed, x) < prequeueSeq(seed, y) ? -1 : 1));
  const rows = await db.execute<{ user_id: string; seq: string }[]>(
    "select user_id, seq::text as seq from queue_entry where concert_id = ? and user_id like 'pg-%'",
    [concertId],
  );
  for (const row of rows) t.is(BigInt(row.seq), prequeueSeq(seed, row.user_id), `${row.user_id}'s place`);

  clock.advance(3_600_001);
  for (const userId of ["late-0", "late-1"]) await join(userId, QueueState.WAITING);
  await step();
  t.is((await queue.getQueueStatus({ token: tokens.get(seedOrder[0]!)! })).status!.state, QueueState.WAITING);
  await stack!.redis.start();
  const backOnRedis = async () => (await step(), app.app.waitingRoom.mode.state === "redis");
  await waitFor(backOnRedis, { message: () => "back on Redis" });
  const line = [...seedOrder, "late-0", "late-1"];
  const admitted: string[] = [];
  for (let round = 0; admitted.length < line.length && round < 10; round++) {
    await step();
    const active: string[] = [];
    for (const userId of line) {
      const { status } = await queue.getQueueStatus({ token: tokens.get(userId)! });
      if (status!.state === QueueState.ACTIVE) active.push(userId);
    }
    t.deepEqual(active, line.slice(admitted.length, admitted.length + CAP), `round ${round}`);
    for (const userId of active) await queue.leaveQueue({ token: tokens.get(userId)! });
    admitted.push(...active);
  }
  t.deepEqual(admitted, line);
});

test.serial("a prequeue taken by the fallback is rebuilt into Redis as a prequeue, in the seed's order", async (t) => {
  const queue = app.grpc(QueueService);
  const db = app.app.orm.em.fork().getConnection();
  await seedCatalog(app.app.orm.em.fork(), { concerts: 2, schedules: 2, seats: 4 });
  const [{ concert_id: concertId }] = await db.execute<[{ concert_id: string }]>(
    "select concert_id from schedule where sale_opens_at is null limit 1",
  );
  const opensAtMs = clock().getTime() + 3_600_000;
  await db.execute("update schedule set sale_opens_at = ? where concert_id = ?", [new Date(opensAtMs), concertId]);
  const step = () => app.app.waitingRoom.admission.admitWaitingUsers();
  const tokens = new Map<string, string>();
  const join = async (userId: string) => {
    const { token, status } = await queue.joinQueue({ concertId, userId });
    t.is(status!.state, QueueState.PREQUEUE, userId);
    tokens.set(userId, token);
  };

  await stack!.redis.kill();
  for (const userId of ["pg-a", "pg-b", "pg-c"]) await join(userId);
  t.is(app.app.waitingRoom.mode.state, "postgres");
  await stack!.redis.start();
  // A step fills Redis and sweeps the rebuilt line (held: the prequeue forms); its keys are all there.
  await waitFor(async () => (await step(), app.app.waitingRoom.mode.state === "redis"), {
    message: () => "back on Redis",
  });
  await join("redis-d");

  const [{ seed }] = await db.execute<[{ seed: string }]>("select seed from prequeue_seed where concert_id = ?", [
    concertId,
  ]);
  const seedOrder = ["pg-a", "pg-b", "pg-c", "redis-d"].sort((x, y) =>
    prequeueSeq(seed, x) < prequeueSeq(seed, y) ? -1 : 1,
  );
  const keys = createQueueKeys(app.config.redisKeyPrefix).concert(concertId);
  t.deepEqual(
    await app.app.redis.zrange(keys.waiting, "0", "-1"),
    seedOrder.map((userId) => tokens.get(userId)),
    "the line in Redis is the seed's order",
  );

  clock.advance(opensAtMs - clock().getTime() + 1);
  await step();
  for (const [i, userId] of seedOrder.entries()) {
    const { status } = await queue.getQueueStatus({ token: tokens.get(userId)! });
    t.is(status!.state, i < CAP ? QueueState.ACTIVE : QueueState.WAITING, userId);
  }
});
