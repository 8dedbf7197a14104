// Three server processes on one PostgreSQL and one Redis, C serving booking and wallet only;
// only B loses Redis (its connection goes through a proxy the test cuts). B serves from
// PostgreSQL and notes what it writes; A merges that into Redis at its next check and goes on
// admitting, so the line keeps one order, every process knows every token, and admission stays
// within the cap. When B reaches Redis again it serves from it, with the line in join order.

import test from "ava";
import { Redis } from "ioredis";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startApp, type App } from "../../src/app.js";
import { startTcpProxy, type TcpProxy } from "../../src/loadtest/tcp-proxy.js";
import { createLogger } from "../../src/platform/logger.js";
import { createGrpcClient, type GrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { startPrivateRedis, type PrivateRedis } from "../helpers/redis-server.js";
import { withToken } from "../helpers/queue.js";
import { waitFor } from "../helpers/wait.js";

const CAP = 2;
let redis: PrivateRedis;
let proxy: TcpProxy;
let a: TestApp;
let b: App;
let queueB: GrpcClient<typeof QueueService>;
/** Serves booking and wallet only: no admission loop, but it checks tokens. */
let c: App;
let bookingC: GrpcClient<typeof BookingService>;

test.before(async () => {
  redis = await startPrivateRedis();
  a = await startTestApp("queue_partial_outage", {
    redisUrl: redis.url,
    maxActiveUsers: CAP,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  proxy = await startTcpProxy(Number(new URL(redis.url).port));
  b = await startApp({ ...a.config, redisUrl: `redis://127.0.0.1:${proxy.port}` }, createLogger("silent"));
  queueB = createGrpcClient(QueueService, `127.0.0.1:${b.grpcPort}`);
  c = await startApp({ ...a.config, services: ["booking", "wallet"] }, createLogger("silent"));
  bookingC = createGrpcClient(BookingService, `127.0.0.1:${c.grpcPort}`);
  await seedSmallCatalog(a, 4);
});

test.after.always(async () => {
  queueB?.close();
  bookingC?.close();
  await c?.stop();
  await b?.stop();
  await a?.stop();
  await proxy?.close();
  await redis?.kill().catch(() => undefined);
});

test("one process cut off from Redis serves from PostgreSQL, the others merge its writes: one line, one order, one cap", async (t) => {
  t.timeout(90_000);
  const queueA = a.grpc(QueueService);
  const concertId = (await a.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const line: string[] = [];
  const join = async (via: typeof queueA, userId: string) => {
    const joined = await via.joinQueue({ concertId, userId });
    line.push(joined.token);
    return joined;
  };
  const active: string[] = [];
  for (let i = 0; i < CAP; i++) active.push((await join(queueA, `first-${i}`)).token);
  line.splice(0);
  await waitFor(
    async () => (await queueA.getQueueStatus({ token: active[CAP - 1]! })).status!.state === QueueState.ACTIVE,
    { message: () => "first users admitted" },
  );
  for (let i = 0; i < 3; i++) await join(queueA, `before-${i}`);

  proxy.cut();
  const k = await join(queueB, "k-via-b");
  t.is(b.waitingRoom.mode.state, "postgres");
  t.is(k.status!.position, 4n);
  // A knows B's token at once (Redis does not yet: A asks the record) ...
  t.is((await queueA.getQueueStatus({ token: k.token })).status!.position, 4n);
  // ... and merges it into Redis at its next check; joins through A then line up behind it.
  const keys = createQueueKeys(a.config.redisKeyPrefix).concert(concertId);
  await waitFor(async () => (await a.app.redis.zrank(keys.waiting, k.token)) !== null, {
    message: () => "B's join merged into Redis by A",
  });
  for (let i = 0; i < 3; i++) t.is((await join(queueA, `after-${i}`)).status!.position, BigInt(5 + i));
  t.is((await join(queueB, "k2-via-b")).status!.position, 8n);

  // One slot frees: the next in line, and only one, is admitted, whichever process admits.
  await queueA.leaveQueue({ token: active[0]! });
  await waitFor(async () => (await queueB.getQueueStatus({ token: line[0]! })).status!.state === QueueState.ACTIVE, {
    message: () => "fallback admission",
  });
  t.is((await queueA.getQueueStatus({ token: line[1]! })).status!.position, 1n);
  // The booking-only process checks tokens against the same store: the new admission counts.
  t.is((await bookingC.listSchedules({ concertId }, withToken(line[0]!))).schedules.length, 2);
  line.shift();

  proxy.restore();
  await waitFor(() => [a.app, b, c].every((app) => app.waitingRoom.mode.state === "redis"), {
    timeoutMs: 30_000,
    message: () => `A ${a.app.waitingRoom.mode.state}, B ${b.waitingRoom.mode.state}, C ${c.waitingRoom.mode.state}`,
  });
  const admin = new Redis(redis.url);
  try {
    t.deepEqual(await admin.zrange(keys.waiting, "0", "-1"), line, "same people, same order");
    t.is(await admin.zcard(keys.active), CAP);
  } finally {
    admin.disconnect();
  }
  for (const [i, token] of line.entries())
    t.is((await queueB.getQueueStatus({ token })).status!.position, BigInt(i + 1));
});
