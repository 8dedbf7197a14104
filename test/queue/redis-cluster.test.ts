// The server on a private three-master Redis Cluster (REDIS_CLUSTER_NODES): concerts whose keys
// live on different masters queue, admit, stream and guard exactly as on one node, the outbox
// relay publishes to the stream on the cluster, and a master that loses its data is noticed and
// rebuilt from PostgreSQL.

import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService, ReservationStatus } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState, type WatchQueueResponse } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { createRedisClient, type RedisClient } from "../../src/platform/redis/client.js";
import { eventStreamKey, fromStreamFields } from "../../src/platform/redis/event-stream.js";
import type { GrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { createQueueKeys, type ConcertKeys } from "../../src/queue/queue-keys.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { loadCatalog } from "../helpers/booking.js";
import { expectError } from "../helpers/errors.js";
import { admitUser, withToken } from "../helpers/queue.js";
import { startPrivateRedisCluster, type PrivateRedisCluster } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/wait.js";

const CAP = 3;

let cluster: PrivateRedisCluster;
let app: TestApp;
let queue: GrpcClient<typeof QueueService>;
/** A patient client of its own, as an outside observer of the cluster. */
let observer: RedisClient;
/** Concerts whose keys live on different masters, one per master found among those seeded. */
let concerts: string[];
const masterOf = new Map<string, number>();

const keysOf = (concertId: string): ConcertKeys => createQueueKeys(app.config.redisKeyPrefix).concert(concertId);
const state = async (token: string) => (await queue.getQueueStatus({ token })).status!;

test.before(async () => {
  cluster = await startPrivateRedisCluster(3);
  app = await startTestApp("queue_cluster", {
    redisClusterNodes: cluster.nodes,
    maxActiveUsers: CAP,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  queue = app.grpc(QueueService);
  observer = createRedisClient({
    url: app.config.redisUrl,
    clusterNodes: cluster.nodes,
    name: "cluster-observer",
    commandTimeoutMs: 10_000,
  });
  await observer.connect();
  // Twelve concerts all land on one master with a chance of 1 in 177,147 (3 · 3^-12).
  await seedCatalog(app.app.orm.em.fork(), { concerts: 12, schedules: 1, seats: 4 });
  const ids = await app.app.orm.em
    .fork()
    .getConnection()
    .execute<{ id: string }[]>("select id from concert order by id");
  for (const { id } of ids) {
    const port = await cluster.masterPortOf(keysOf(id).seq);
    if (![...masterOf.values()].includes(port)) masterOf.set(id, port);
  }
  concerts = [...masterOf.keys()];
});

test.after.always(async () => {
  observer?.disconnect();
  await app?.stop();
  await cluster?.stop();
});

/** Leaves every live place and slot of a concert, so each test starts from an empty room. */
async function emptyConcert(concertId: string): Promise<void> {
  const keys = keysOf(concertId);
  const tokens = [
    ...(await observer.zrange(keys.waiting, "0", "-1")),
    ...(await observer.zrange(keys.active, "0", "-1")),
  ];
  await Promise.all(tokens.map((token) => queue.leaveQueue({ token })));
}

/** Joins `count` users one after the other; returns their tokens in join order. */
async function joinInOrder(concertId: string, prefix: string, count: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) tokens.push((await queue.joinQueue({ concertId, userId: `${prefix}-${i}` })).token);
  return tokens;
}

async function fillSlots(concertId: string, prefix: string): Promise<string[]> {
  const holders = await joinInOrder(concertId, prefix, CAP);
  await waitFor(async () => (await Promise.all(holders.map(state))).every((s) => s.state === QueueState.ACTIVE), {
    message: () => `${prefix} admitted`,
  });
  return holders;
}

async function mode(): Promise<string | undefined> {
  const text = await (await fetch(`${app.connectUrl}/metrics`)).text();
  return /^queue_store_mode\{mode="(\w+)"\} 1$/m.exec(text)?.[1];
}

test.serial("each concert's keys share one master, and the concerts spread over several", async (t) => {
  t.true(concerts.length >= 2, `concerts on ${concerts.length} master(s)`);
  for (const concertId of concerts) {
    const ports = await Promise.all(Object.values(keysOf(concertId)).map((key) => cluster.masterPortOf(key)));
    t.deepEqual(new Set(ports), new Set([masterOf.get(concertId)]));
  }
});

test.serial("joins are FIFO and idempotent per user, on every master", async (t) => {
  await Promise.all(
    concerts.map(async (concertId) => {
      const holders = await fillSlots(concertId, "fifo-holder");
      const waiting = await Promise.all((await joinInOrder(concertId, "fifo", 5)).map(state));
      t.deepEqual(
        waiting.map((s) => [s.state, s.position]),
        [1n, 2n, 3n, 4n, 5n].map((p) => [QueueState.WAITING, p]),
      );
      t.is((await app.connect(QueueService).joinQueue({ concertId, userId: "fifo-2" })).token, waiting[2]!.token);
      t.is((await queue.joinQueue({ concertId, userId: "fifo-holder-1" })).token, holders[1]!);
      const rows = await app.app.orm.em
        .fork()
        .getConnection()
        .execute<{ token: string }[]>("select token from queue_entry where concert_id = ? order by seq", [concertId]);
      t.deepEqual(
        rows.map((r) => r.token),
        [...holders, ...waiting.map((s) => s.token)],
        "acknowledged in PostgreSQL, in line order",
      );
      // The scripts really wrote to the concert's own master.
      const keys = keysOf(concertId);
      t.is(
        (
          await cluster.cli(
            masterOf.get(concertId)!,
            "exists",
            keys.seq,
            keys.waiting,
            keys.active,
            keys.users,
            keys.owners,
          )
        ).trim(),
        "5",
      );
      await emptyConcert(concertId);
    }),
  );
});

test.serial("admission follows the line and never exceeds the cap on any master (concurrent observer)", async (t) => {
  const maxActive = new Map<string, number>();
  let observing = true;
  const observed = (async () => {
    while (observing) {
      for (const concertId of concerts)
        maxActive.set(
          concertId,
          Math.max(maxActive.get(concertId) ?? 0, await observer.zcard(keysOf(concertId).active)),
        );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();

  await Promise.all(
    concerts.map(async (concertId) => {
      const keys = keysOf(concertId);
      const joined = await Promise.all(
        Array.from({ length: 20 }, (_, i) => queue.joinQueue({ concertId, userId: `crowd-${i}` })),
      );
      const rows = await app.app.orm.em
        .fork()
        .getConnection()
        .execute<{ token: string; seq: string }[]>(
          "select token, seq::text as seq from queue_entry where concert_id = ?",
          [concertId],
        );
      const seqOf = new Map(rows.map((r) => [r.token, BigInt(r.seq)]));
      t.true(
        joined.every((j) => seqOf.has(j.token)),
        "every acknowledged join is in PostgreSQL",
      );
      // Admission time of each token (its active-set score, shared by one batch); only we free slots.
      const admittedAt = new Map<string, number>();
      while (admittedAt.size < joined.length) {
        await waitFor(
          async () => (await observer.zcard(keys.active)) === Math.min(CAP, joined.length - admittedAt.size),
          { message: () => `slots refilled on ${concertId}` },
        );
        const flat = await observer.zrange(keys.active, "0", "-1", "WITHSCORES");
        for (let i = 0; i < flat.length; i += 2) admittedAt.set(flat[i]!, Number(flat[i + 1]));
        await Promise.all(Array.from({ length: flat.length / 2 }, (_, i) => queue.leaveQueue({ token: flat[2 * i]! })));
      }
      const batches = new Map<number, bigint[]>();
      for (const [token, at] of admittedAt) batches.set(at, [...(batches.get(at) ?? []), seqOf.get(token)!]);
      const ordered = [...batches.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([, seqs]) => seqs.sort((a, b) => (a < b ? -1 : 1)));
      for (let i = 1; i < ordered.length; i++)
        t.true(
          ordered[i]![0]! > ordered[i - 1]!.at(-1)!,
          `batch ${i} on ${concertId} comes after the previous one in line`,
        );
    }),
  );
  observing = false;
  await observed;
  for (const concertId of concerts)
    t.true(maxActive.get(concertId)! <= CAP, `${concertId}: at most ${CAP} active, saw ${maxActive.get(concertId)}`);
});

test.serial("WatchQueue streams decreasing positions and ends at ACTIVE, on every master", async (t) => {
  await Promise.all(
    concerts.map(async (concertId) => {
      const holders = await fillSlots(concertId, "watch-holder");
      await joinInOrder(concertId, "ahead", 2);
      const [watched] = await joinInOrder(concertId, "watcher", 1);
      const messages: WatchQueueResponse[] = [];
      const watching = (async () => {
        for await (const m of queue.watchQueue({ token: watched! })) messages.push(m);
      })();
      // One slot at a time: the watcher moves from third to second to first, then in.
      for (const [i, holder] of holders.entries()) {
        await waitFor(() => messages.at(-1)?.status?.position === BigInt(3 - i), {
          message: () => `watcher at position ${3 - i}`,
        });
        await queue.leaveQueue({ token: holder });
      }
      await watching;
      const positions = messages.filter((m) => !m.heartbeat).map((m) => [m.status!.state, m.status!.position]);
      t.deepEqual(positions, [
        [QueueState.WAITING, 3n],
        [QueueState.WAITING, 2n],
        [QueueState.WAITING, 1n],
        [QueueState.ACTIVE, 0n],
      ]);
      await emptyConcert(concertId);
    }),
  );
});

test.serial("the token guard answers every case from tokens on different masters", async (t) => {
  const [a, b] = concerts as [string, string];
  const booking = app.grpc(BookingService);
  const [holder] = await fillSlots(a, "guard-holder");
  t.is((await booking.listSchedules({ concertId: a }, withToken(holder!))).schedules.length, 1);
  await expectError(t, booking.listSchedules({ concertId: a }), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
  await expectError(
    t,
    booking.listSchedules({ concertId: a }, withToken("ab".repeat(16))),
    Code.Unauthenticated,
    "QUEUE_TOKEN_INVALID",
  );
  await expectError(
    t,
    booking.listSchedules({ concertId: b }, withToken(holder!)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
  const [waiter] = await joinInOrder(a, "guard-waiter", 1);
  await expectError(
    t,
    booking.listSchedules({ concertId: a }, withToken(waiter!)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_NOT_ACTIVE",
  );
  await queue.leaveQueue({ token: holder! });
  await expectError(
    t,
    booking.listSchedules({ concertId: a }, withToken(holder!)),
    Code.PermissionDenied,
    "QUEUE_TOKEN_EXPIRED",
  );
  await emptyConcert(a);
});

test.serial(
  "reserve and pay: the outbox relay publishes to the stream on the cluster and the slot is given back",
  async (t) => {
    const concertId = concerts[1]!;
    const catalog = await loadCatalog(app.app.orm.em.fork(), concertId);
    const token = await admitUser(app, concertId, "payer");
    const wallet = app.grpc(WalletService);
    await wallet.topUp({ userId: "payer", amount: { amountMinor: 50_000n }, idempotencyKey: "top-up" });
    const schedule = catalog.schedules[0]!;
    const { reservation } = await app
      .grpc(BookingService)
      .reserveSeat(
        { scheduleId: schedule.id, seatId: schedule.seatIds[0]!, userId: "payer", requestId: "hold-1" },
        withToken(token),
      );
    const paid = await wallet.payReservation(
      { reservationId: reservation!.id, userId: "payer", idempotencyKey: "pay-1" },
      withToken(token),
    );
    t.is(paid.reservation?.status, ReservationStatus.CONFIRMED);

    const published = async () =>
      ((await observer.xrange(eventStreamKey(app.config.redisKeyPrefix), "-", "+")) as [string, string[]][])
        .map(([, fields]) => fromStreamFields(fields)!)
        .filter((e) => e.aggregateId === reservation!.id);
    await waitFor(async () => (await published()).length > 0, { message: () => "payment.completed on the stream" });
    t.is((await published())[0]!.eventType, "payment.completed");
    t.is((await state(token)).state, QueueState.EXPIRED);
  },
);

test.serial(
  "a master that loses its data is noticed at the next admission tick and rebuilt from PostgreSQL",
  async (t) => {
    // A concert away from the registry's master: only the ADMIT script can notice its loss.
    const registryMaster = await cluster.masterPortOf(createQueueKeys(app.config.redisKeyPrefix).concerts);
    const concertId = concerts.find((c) => masterOf.get(c) !== registryMaster)!;
    const keys = keysOf(concertId);
    await emptyConcert(concertId);
    const holders = await fillSlots(concertId, "lost-holder");
    const line = await joinInOrder(concertId, "lost", 4);

    await cluster.cli(masterOf.get(concertId)!, "flushall");
    await waitFor(async () => (await observer.zrange(keys.waiting, "0", "-1")).join() === line.join(), {
      timeoutMs: 20_000,
      message: () => "line rebuilt in Redis",
    });
    await waitFor(async () => (await mode()) === "redis", { message: () => "back on Redis" });
    t.deepEqual((await observer.zrange(keys.active, "0", "-1")).sort(), [...holders].sort());
    t.deepEqual(await Promise.all(line.map(async (token) => (await state(token)).position)), [1n, 2n, 3n, 4n]);
    t.is((await app.grpc(BookingService).listSchedules({ concertId }, withToken(holders[0]!))).schedules.length, 1);
    const next = await queue.joinQueue({ concertId, userId: "after-loss" });
    t.is(next.status!.position, 5n, "new joins line up behind everyone");
  },
);
