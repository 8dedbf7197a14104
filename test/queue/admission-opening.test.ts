// The opening of an admission step: the store check (Redis's marker and the record's notes of
// missed writes) and the concerts in line are read at once, not one after another (in a burst
// each round trip waits a turn of a busy event loop); after a check that filled Redis, the
// concerts are read again, so a concert only the record knew is stepped through at once.

import { randomUUID } from "node:crypto";
import test from "ava";
import { createLogger } from "../../src/platform/logger.js";
import type { RedisClient } from "../../src/platform/redis/client.js";
import { createAdmissionLoop } from "../../src/queue/admission-loop.js";
import { createPgQueue } from "../../src/queue/pg-queue.js";
import type { QueueDb } from "../../src/queue/queue-db.js";
import type { RedisQueue } from "../../src/queue/redis-queue.js";
import { HAND_STEPPED_RULE, openQueueDb, quietQueueMode, type QueueDbFixture } from "../helpers/queue-db.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const RULE = HAND_STEPPED_RULE;

const { redis, queue } = redisQueueFixture("admission-opening");
let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("admission_opening", { poolMax: 4 });
});

test.after.always(async () => {
  await fixture?.stop();
});

/** The step's reads, each noted when sent and answered only once `open` is called. */
function heldReads() {
  const sent: string[] = [];
  let holding = false;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const held = async <T>(name: string, read: () => Promise<T>): Promise<T> => {
    if (!holding) return read();
    sent.push(name);
    await gate;
    return read();
  };
  const db: QueueDb = {
    ...fixture.db,
    query: ((sql: string, params?: unknown[]) =>
      sql.includes("queue_missed")
        ? held("record's notes", () => fixture.db.query(sql, params))
        : fixture.db.query(sql, params)) as QueueDb["query"],
  };
  const heldRedis = new Proxy(redis, {
    get(target, key) {
      if (key === "get") return (name: string) => held("Redis's marker", () => target.get(name));
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as RedisClient;
  const redisQueue: RedisQueue = { ...queue, concerts: () => held("concerts in line", () => queue.concerts()) };
  return { sent, db, redis: heldRedis, redisQueue, hold: () => (holding = true), open };
}

// Serial: both tests step admission over the same Redis prefix and database, so one test's step
// could admit the other's user (seen under load: the second test's tick then admitted nobody).
test.serial("the step's opening reads go out together", async (t) => {
  const reads = heldReads();
  const mode = quietQueueMode({ redis: reads.redis, redisQueue: reads.redisQueue, db: reads.db });
  await mode.check();
  t.is(mode.state, "redis");
  const loop = createAdmissionLoop({
    mode,
    redisQueue: reads.redisQueue,
    db: reads.db,
    rule: RULE,
    logger: createLogger("silent"),
  });
  reads.hold();
  const step = loop.admitWaitingUsers();
  // Whatever the wait, the old order had sent only Redis's marker read while it was held.
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(reads.sent.toSorted(), ["Redis's marker", "concerts in line", "record's notes"]);
  reads.open();
  await step;
  t.is(mode.state, "redis");
});

test.serial("a concert only the record knew is stepped through once the check has filled Redis", async (t) => {
  const mode = quietQueueMode({ redis, redisQueue: queue, db: fixture.db });
  await mode.check();
  t.is(mode.state, "redis");
  // A join made on PostgreSQL (as by a process cut off from Redis) is noted for the next check.
  const concertId = randomUUID();
  const [joined] = await createPgQueue(fixture.db).joinMany([{ concertId, userId: "u1", freshToken: randomUUID() }]);
  t.false((await queue.concerts()).includes(concertId));
  const ticks: { concertId: string; admitted: number }[] = [];
  const loop = createAdmissionLoop({
    mode,
    redisQueue: queue,
    db: fixture.db,
    rule: RULE,
    logger: createLogger("silent"),
    onTick: (tick) => ticks.push(tick),
  });
  await loop.admitWaitingUsers();
  t.deepEqual(
    ticks.filter((tick) => tick.concertId === concertId).map((tick) => tick.admitted),
    [1],
  );
  const [row] = await fixture.db.query<{ state: string }>("select state from queue_entry where token = $1", [
    joined!.token,
  ]);
  t.is(row?.state, "ACTIVE");
});
