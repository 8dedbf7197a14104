import test from "ava";
import type { Redis } from "ioredis";
import { Registry } from "prom-client";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { createLogger } from "../../src/platform/logger.js";
import { createRedis } from "../../src/platform/redis/client.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { createWaitingRoom, type WaitingRoom } from "../../src/queue/waiting-room.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";

const CAP = 50;
const USERS = 400;

let app: TestApp;
const loops: { room: WaitingRoom; redis: Redis }[] = [];

test.before(async () => {
  // The app's own loop would first tick after an hour: only the four loops below admit.
  app = await startTestApp("queue_race", {
    maxActiveUsers: CAP,
    admissionIntervalMs: 3_600_000,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  await seedSmallCatalog(app, 4);
  for (let i = 0; i < 4; i++) {
    const redis = createRedis({ url: app.config.redisUrl, name: `race-loop-${i}` });
    await redis.connect();
    const room = await createWaitingRoom({
      orm: app.app.orm,
      redis,
      config: app.config,
      logger: createLogger("silent"),
      registry: new Registry(),
    });
    loops.push({ room, redis });
  }
});

test.after.always(async () => {
  for (const { room, redis } of loops) {
    await room.stop();
    redis.disconnect();
  }
  await app?.stop();
});

test("four admission loops on separate connections admit at once: no double admission, no skip, cap held", async (t) => {
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const keys = createQueueKeys(app.config.redisKeyPrefix).concert(concertId);
  const queue = app.grpc(QueueService);
  await Promise.all(Array.from({ length: USERS }, (_, i) => queue.joinQueue({ concertId, userId: `race-${i}` })));
  const rows = await app.app.orm.em
    .getConnection()
    .execute<{ token: string }[]>("select token from queue_entry where concert_id = ? order by seq", [concertId]);
  const line = rows.map((r) => r.token);
  t.is(line.length, USERS);

  const admitted = new Set<string>();
  let rounds = 0;
  while (admitted.size < USERS) {
    rounds++;
    await Promise.all(loops.map(({ room }) => room.admission.admitWaitingUsers()));
    const active = await app.app.redis.zrange(keys.active, "0", "-1");
    t.true(active.length <= CAP, `round ${rounds}: ${active.length} active`);
    for (const token of active) admitted.add(token);
    // Admitted so far must be exactly the head of the line.
    t.deepEqual(
      [...admitted].sort(),
      line.slice(0, admitted.size).sort(),
      `round ${rounds}: admissions skipped someone`,
    );
    t.is(
      active.length,
      Math.min(CAP, USERS - (admitted.size - active.length)),
      `round ${rounds}: free slots left unused`,
    );
    // Free a random part of the slots for the next round.
    const leaving = active.filter(() => Math.random() < 0.4);
    await Promise.all(leaving.map((token) => queue.leaveQueue({ token })));
  }
  t.true(rounds >= USERS / CAP);
  t.is(await app.app.redis.zcard(keys.waiting), 0);
});
