// A concert's prequeue record against its schedules (syncPrequeue), and what a process does when
// PostgreSQL stops answering: statuses and the admission gate go on with the last phase read, and
// a concert never read is held rather than admitted (a prequeue may be forming). Real PostgreSQL
// and Redis; the sale clock is stepped, the one-second reuse of a read is waited out.

import test from "ava";
import pg from "pg";
import type { MikroORM } from "@mikro-orm/postgresql";
import { loadConfig } from "../../src/config.js";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, migrateUp } from "../../src/platform/db/orm.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { connectRedis, createRedisClient, type RedisClient } from "../../src/platform/redis/client.js";
import { fixedAdmissionSettings } from "../../src/queue/admission-settings.js";
import { admissionRule } from "../../src/queue/admission-rule.js";
import { createPrequeue, syncPrequeue } from "../../src/queue/prequeue.js";
import { createQueueDb, type Query, type QueueDb } from "../../src/queue/queue-db.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import type { QueueStatus } from "../../src/queue/queue-status.js";
import { steppedClock } from "../helpers/clock.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { removeTestKeys, testKeyPrefix } from "../helpers/redis-server.js";

const HOUR = 3_600_000;
const prefix = testKeyPrefix("prequeue_phase");
let database: TestDatabase;
let orm: MikroORM;
let db: QueueDb;
let redis: RedisClient;
let concerts: string[];

test.before(async () => {
  database = await createTestDatabase("prequeuephase");
  ({ orm } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax: 4 }));
  await migrateUp(orm);
  await seedCatalog(orm.em.fork(), { concerts: 5, schedules: 2, seats: 1 });
  db = await createQueueDb(orm, () => undefined);
  concerts = (await db.query<{ id: string }>("select id from concert order by id")).map((r) => r.id);
  const { redisUrl } = loadConfig({});
  redis = createRedisClient({ url: redisUrl, name: "prequeue-phase-test" });
  await connectRedis(redis, redisUrl);
});

test.after.always(async () => {
  redis?.disconnect();
  if (orm) await closeORM(orm);
  if (database) await database.drop();
  await removeTestKeys(prefix);
});

const setOpening = (concertId: string, opensAt: Date | null) =>
  db.query("update schedule set sale_opens_at = $2 where concert_id = $1", [concertId, opensAt]);

/** A waiting user's status as the store has it, for a view to show. */
const waiting = (concertId: string): QueueStatus => ({
  token: "t",
  concertId,
  userId: "u",
  state: "WAITING",
  position: 3,
  totalWaiting: 3,
  activeExpireMs: 0,
  nowMs: 0,
  activeUsers: 0,
});

test.serial(
  "the record follows a future opening, opens when the opening is pulled in, then never changes",
  async (t) => {
    const concertId = concerts[0]!;
    const now = Date.now();
    t.is(await syncPrequeue(db.query, concertId, now), undefined, "on sale at once: no prequeue, no seed");

    await setOpening(concertId, new Date(now + HOUR));
    const committed = await syncPrequeue(db.query, concertId, now);
    t.is(committed?.opensAtMs, now + HOUR);
    t.regex(committed!.seedSha256, /^[0-9a-f]{64}$/);

    await db.query(
      "update schedule set sale_opens_at = $2 where id = (select id from schedule where concert_id = $1 order by id limit 1)",
      [concertId, new Date(now + HOUR / 2)],
    );
    const moved = await syncPrequeue(db.query, concertId, now);
    t.is(moved?.opensAtMs, now + HOUR / 2, "the earliest published opening");
    t.is(moved?.seedHex, committed!.seedHex, "the seed stays the one committed");

    await setOpening(concertId, null);
    const opened = await syncPrequeue(db.query, concertId, now + 1000);
    t.is(opened?.opensAtMs, now + 1000, "an opening cleared (on sale at once) opens the prequeue now");

    await setOpening(concertId, new Date(now + 2 * HOUR));
    const frozen = await syncPrequeue(db.query, concertId, now + 2000);
    t.deepEqual(frozen, opened, "a prequeue opens once");
  },
);

test.serial("while PostgreSQL cannot answer, statuses and admission go on with the last phase read", async (t) => {
  const [forming, neverRead] = [concerts[1]!, concerts[2]!];
  const clock = steppedClock();
  const opensAtMs = clock().getTime() + HOUR;
  await setOpening(forming, new Date(opensAtMs));
  await setOpening(neverRead, new Date(opensAtMs));
  // A pool of its own, ended below: every query after that fails.
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const query: Query = async (text, params = []) => (await pool.query(text, params as unknown[])).rows;
  const prequeue = createPrequeue({ query, redis, keys: createQueueKeys(prefix), clock });
  const gate = prequeue.gate(
    fixedAdmissionSettings(
      admissionRule({ maxActiveUsers: 1, activeTtlSeconds: 1, waitingTtlSeconds: 1, intervalMs: 1000 }),
    ),
  );

  t.is((await prequeue.viewOf(forming))(waiting(forming)).state, "PREQUEUE");
  t.false(await gate.mayAdmit(forming));
  await pool.end();
  await new Promise((resolve) => setTimeout(resolve, 1100));

  const view = (await prequeue.viewOf(forming))(waiting(forming));
  t.deepEqual([view.state, view.position], ["PREQUEUE", 0], "the last phase read still holds");
  t.false(await gate.mayAdmit(forming));
  t.false(await gate.mayAdmit(neverRead), "a concert never read is held");
  t.is((await prequeue.viewOf(neverRead))(waiting(neverRead)).state, "WAITING", "and shown as the store has it");
  await t.throwsAsync(prequeue.placeOf(neverRead, "u"), undefined, "a join needs PostgreSQL anyway");

  clock.advance(HOUR);
  t.is((await prequeue.viewOf(forming))(waiting(forming)).state, "WAITING", "the opening passes on the clock");
  t.true(await gate.mayAdmit(forming));
  t.is(
    await redis.get(createQueueKeys(prefix).concert(forming).prequeueOpened),
    String(opensAtMs),
    "the line marked opened",
  );
});

test.serial(
  "a read under way holds nobody who has read the concert before; an opening passed is not read again",
  async (t) => {
    const concertId = concerts[3]!;
    const clock = steppedClock();
    await setOpening(concertId, new Date(clock().getTime() + HOUR));
    let reads = 0;
    let held: Promise<void> | undefined;
    const query: Query = async (text, params) => {
      reads++;
      await held;
      return db.query(text, params);
    };
    const prequeue = createPrequeue({ query, redis, keys: createQueueKeys(prefix), clock });
    const status = waiting(concertId);
    const sleep = (ms: number) => new Promise<undefined>((resolve) => setTimeout(resolve, ms, undefined));
    t.is((await prequeue.viewOf(concertId))(status).state, "PREQUEUE");

    // Every read from here waits (a busy pool) until released; the one-second reuse is waited out.
    let release!: () => void;
    held = new Promise((resolve) => (release = resolve));
    await sleep(1100);
    const readsBefore = reads;
    const view = await Promise.race([prequeue.viewOf(concertId), sleep(10_000)]);
    t.true(reads > readsBefore, "a new read was started");
    t.is(view?.(status).state, "PREQUEUE", "answered with the last read while the new one waits");
    release();
    held = undefined;

    // Once a read has found the opening passed, the record cannot change: it is not read again.
    clock.advance(HOUR + 1);
    await sleep(1100);
    await prequeue.viewOf(concertId);
    await sleep(1100);
    await prequeue.viewOf(concertId);
    const readsOpened = reads;
    await sleep(1100);
    t.is((await prequeue.viewOf(concertId))(status).state, "WAITING");
    t.is(reads, readsOpened, "no read after the opening was seen passed");
  },
);

test.serial("describe reads the record now, and what it read is what the process goes on with", async (t) => {
  // An operator's change is read back at once (GetQueueSettings), however recent the last read.
  const concertId = concerts[4]!;
  const clock = steppedClock();
  await setOpening(concertId, new Date(clock().getTime() + HOUR));
  const prequeue = createPrequeue({ query: db.query, redis, keys: createQueueKeys(prefix), clock });
  t.is((await prequeue.viewOf(concertId))(waiting(concertId)).state, "PREQUEUE");
  await setOpening(concertId, null);
  const described = await prequeue.describe(concertId);
  t.false(described?.forming, "on sale at once: the prequeue opened now");
  t.is((await prequeue.viewOf(concertId))(waiting(concertId)).state, "WAITING");
});
