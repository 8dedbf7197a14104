// The transactional outbox end to end against real PostgreSQL and Redis: events committed with
// no relay running are published later; concurrent relays split the backlog without losing
// per-aggregate order; a crash after XADD republishes, and the events tool hides the duplicate.

import test from "ava";
import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { reserveSeat } from "../../src/booking/seat-hold.js";
import { recordEvent } from "../../src/platform/db/outbox.js";
import { Outbox } from "../../src/platform/db/outbox.entity.js";
import { publishOutboxBatch, startOutboxRelay } from "../../src/platform/db/outbox-relay.js";
import { createSideConnection } from "../../src/platform/db/side-connection.js";
import { createLogger } from "../../src/platform/logger.js";
import { Registry } from "prom-client";
import { createRedis } from "../../src/platform/redis/client.js";
import { eventStreamKey, fromStreamFields } from "../../src/platform/redis/event-stream.js";
import { payReservation } from "../../src/wallet/reservation-payment.js";
import { fund, openBookingDb, outboxRows, type BookingDb } from "../helpers/booking.js";

let db: BookingDb;
let redis: Redis;
const prefix = `test:outbox:${randomBytes(4).toString("hex")}:`;
let nextPrefix = 0;

test.before(async () => {
  db = await openBookingDb("outbox", 20);
  redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true });
  await redis.connect();
});

test.after.always(async () => {
  const keys = redis ? await redis.keys(`${prefix}*`) : [];
  if (keys.length > 0) await redis.del(...keys);
  await redis?.quit();
  await db?.stop();
});

/** Each test publishes into its own stream; all tests share one outbox, so they run serially. */
const freshStream = () => eventStreamKey(`${prefix}${nextPrefix++}:`);

async function streamEvents(key: string) {
  const entries = (await redis.xrange(key, "-", "+")) as [string, string[]][];
  return entries.map(([, fields]) => fromStreamFields(fields)!);
}

/** Runs one relay until nothing is due; returns how many events it published. */
async function drain(key: string, batchSize = 100, maxLen?: number): Promise<number> {
  for (let total = 0; ;) {
    const published = await publishOutboxBatch(db.orm, redis, { streamKey: key, batchSize, maxLen });
    if (published === 0) return total;
    total += published;
  }
}

test.serial("a payment committed while no relay runs is published exactly once when a relay starts", async (t) => {
  const key = freshStream();
  const schedule = db.catalog.schedules[0]!;
  await fund(db.orm, "crashy", 100_000n);
  const held = await reserveSeat(
    db.orm,
    { scheduleId: schedule.id, seatId: schedule.seatIds[0]!, userId: "crashy", requestId: "h" },
    { holdSeconds: 60, maxSeatsPerUser: 4 },
  );
  const { payment } = await payReservation(db.orm, { reservationId: held.id, userId: "crashy", idempotencyKey: "p" });
  // The process "crashed" here: committed, never published.
  t.is(await redis.xlen(key), 0);
  const [row] = await outboxRows(db.orm, held.id);
  t.is(row?.publishedAt, null);

  t.is(await drain(key), 1);
  const events = await streamEvents(key);
  t.is(events.length, 1);
  t.like(events[0], {
    eventId: row!.eventId,
    eventType: "payment.completed",
    aggregateType: "reservation",
    aggregateId: held.id,
  });
  t.like(events[0]!.payload, { payment_id: payment.id, reservation_id: held.id });
  t.truthy((await outboxRows(db.orm, held.id))[0]!.publishedAt);
  t.is(await drain(key), 0);
});

test.serial("three relays draining a backlog together publish each event once, in order per aggregate", async (t) => {
  const key = freshStream();
  const aggregates = Array.from({ length: 60 }, () => randomUUID());
  const em = db.orm.em.fork();
  for (const step of ["first", "second", "third"]) {
    for (const aggregateId of aggregates) {
      await recordEvent(em, {
        eventType: `test.${step}`,
        aggregateType: "test",
        aggregateId,
        payload: { step },
        occurredAt: new Date(),
      });
    }
  }
  const counts = await Promise.all([drain(key, 25), drain(key, 25), drain(key, 25)]);
  t.is(
    counts.reduce((a, b) => a + b, 0),
    180,
  );
  const events = await streamEvents(key);
  t.is(events.length, 180);
  t.is(new Set(events.map((e) => e.eventId)).size, 180);
  for (const aggregateId of aggregates) {
    t.deepEqual(
      events.filter((e) => e.aggregateId === aggregateId).map((e) => e.eventType),
      ["test.first", "test.second", "test.third"],
    );
  }
});

test.serial(
  "a crash between XADD and marking published sends an event twice; the events tool prints it once",
  async (t) => {
    const streamPrefix = `${prefix}${nextPrefix++}:`;
    const key = eventStreamKey(streamPrefix);
    const aggregateId = randomUUID();
    const eventId = await recordEvent(db.orm.em.fork(), {
      eventType: "test.dup",
      aggregateType: "test",
      aggregateId,
      payload: { n: 1 },
      occurredAt: new Date(),
    });
    await drain(key);
    // What a crash before COMMIT leaves behind: the XADD happened, the mark did not.
    await db.orm.em.fork().nativeUpdate(Outbox, { eventId }, { publishedAt: null });
    await drain(key);
    t.deepEqual(
      (await streamEvents(key)).map((e) => e.eventId),
      [eventId, eventId],
    );

    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "src/tools/events.ts"], {
      env: { ...process.env, REDIS_KEY_PREFIX: streamPrefix, REDIS_URL: "redis://127.0.0.1:6379" },
      timeout: 30_000,
    });
    const lines = stdout
      .trim()
      .split("\n")
      .map(
        (line) => JSON.parse(line) as { event_id: string; event_type: string; aggregate_id: string; payload: unknown },
      );
    t.is(lines.length, 1);
    t.like(lines[0], { event_id: eventId, event_type: "test.dup", aggregate_id: aggregateId, payload: { n: 1 } });
  },
);

test.serial("with Redis down the batch rolls back and the events stay unpublished", async (t) => {
  const aggregateId = randomUUID();
  await recordEvent(db.orm.em.fork(), {
    eventType: "test.down",
    aggregateType: "test",
    aggregateId,
    payload: {},
    occurredAt: new Date(),
  });
  const dead = createRedis({ url: "redis://127.0.0.1:1", name: "dead" });
  try {
    await t.throwsAsync(publishOutboxBatch(db.orm, dead, { streamKey: freshStream(), batchSize: 10 }));
  } finally {
    dead.disconnect();
  }
  t.is((await outboxRows(db.orm, aggregateId))[0]!.publishedAt, null);
  await drain(freshStream());
  t.truthy((await outboxRows(db.orm, aggregateId))[0]!.publishedAt);
});

test.serial(
  "EVENT_STREAM_MAX_LEN trims the stream to about that many of the newest events; the outbox keeps every one",
  async (t) => {
    const key = freshStream();
    const aggregates = Array.from({ length: 1000 }, () => randomUUID());
    const em = db.orm.em.fork();
    for (const aggregateId of aggregates)
      await recordEvent(em, {
        eventType: "test.trim",
        aggregateType: "test",
        aggregateId,
        payload: {},
        occurredAt: new Date(),
      });
    t.is(await drain(key, 100, 150), 1000);
    // MAXLEN ~ trims whole stream nodes (100 entries each by default): never below the limit, a node above at most.
    const length = await redis.xlen(key);
    t.true(length >= 150 && length <= 250, `stream length ${length}`);
    const kept = await streamEvents(key);
    t.deepEqual(
      kept.map((e) => e.aggregateId),
      aggregates.slice(-length),
    );
    const rows = await Promise.all(aggregates.map((id) => outboxRows(db.orm, id)));
    t.true(rows.every(([row]) => row?.publishedAt));
  },
);

test.serial("a relay stopped while its nudged run still waits publishes that batch before it stops", async (t) => {
  const key = freshStream();
  await drain(key); // what earlier tests left
  const metricsConnection = createSideConnection(db.orm.config.get("clientUrl")!, 2000);
  // Neither the interval nor the nudge's delay comes round during this test.
  const relay = startOutboxRelay({
    orm: db.orm,
    redis,
    streamKey: key,
    batchSize: 100,
    intervalMs: 60_000,
    nudgeDelayMs: 60_000,
    logger: createLogger("silent"),
    registry: new Registry(),
    metricsConnection,
  });
  try {
    const eventId = await db.orm.em.fork().transactional((em) =>
      recordEvent(em, {
        eventType: "test.last",
        aggregateType: "test",
        aggregateId: randomUUID(),
        payload: {},
        occurredAt: new Date(),
      }),
    );
    relay.nudge();
    await relay.stop();
    t.deepEqual(
      (await streamEvents(key)).map((e) => e.eventId),
      [eventId],
    );
  } finally {
    await relay.stop();
    await metricsConnection.close();
  }
});
