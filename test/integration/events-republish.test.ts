// `npm run events -- --republish-since TIME` after Redis lost its event stream: the events
// published since TIME are on the stream again, with their original event ids, in order per
// aggregate; older ones are not sent again; a bad time or an unreachable Redis changes nothing.

import test from "ava";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { MikroORM } from "@mikro-orm/postgresql";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, migrateUp } from "../../src/platform/db/orm.js";
import { publishOutboxBatch } from "../../src/platform/db/outbox-relay.js";
import { eventStreamKey, fromStreamFields } from "../../src/platform/redis/event-stream.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { startPrivateRedis, type PrivateRedis } from "../helpers/redis-server.js";

const PREFIX = "events-republish:";
let database: TestDatabase;
let orm: MikroORM;
let redis: PrivateRedis;

test.before(async () => {
  database = await createTestDatabase("eventsrepublish");
  ({ orm } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax: 2 }));
  await migrateUp(orm);
  redis = await startPrivateRedis();
});

test.after.always(async () => {
  await redis?.kill().catch(() => undefined);
  if (orm) await closeORM(orm);
  if (database) await database.drop();
});

function runEvents(
  args: string[],
  databaseUrl = database.url,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/tools/events.ts", ...args], {
    env: { ...process.env, REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX, DATABASE_URL: databaseUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("exit", (status) => resolve({ status, stdout, stderr })));
}

async function streamEvents(): Promise<{ eventId: string; eventType: string; aggregateId: string }[]> {
  const client = new Redis(redis.url);
  try {
    const entries = (await client.xrange(eventStreamKey(PREFIX), "-", "+")) as [string, string[]][];
    return entries
      .map(([, fields]) => fromStreamFields(fields)!)
      .map(({ eventId, eventType, aggregateId }) => ({ eventId, eventType, aggregateId }));
  } finally {
    client.disconnect();
  }
}

test.serial("a bad time is refused in one line pointing at --help, exit status 2", async (t) => {
  for (const args of [
    ["--republish-since", "yesterday"],
    ["--republish-since", "2026-11-26T17:00:00"],
    ["--republish-since", "2026-11-26T17:00:00Z", "--follow"],
  ]) {
    const run = await runEvents(args);
    t.is(run.status, 2, args.join(" "));
    t.regex(run.stderr, /^events: [^\n]+; `npm run events -- --help` lists the options\n$/, args.join(" "));
  }
});

test.serial(
  "after Redis restarted empty, the events published since the given time are on the stream again, once, in order per aggregate",
  async (t) => {
    t.timeout(60_000);
    const insert = (eventType: string, aggregateId: string) =>
      orm.em
        .getConnection()
        .execute(
          "insert into outbox (event_id, event_type, aggregate_type, aggregate_id, payload, created_at) values (?, ?, 'reservation', ?, '{}', now())",
          [randomUUID(), eventType, aggregateId],
        );
    const [old, a, b] = [randomUUID(), randomUUID(), randomUUID()];
    const client = new Redis(redis.url);
    // As the relay runs: batch after batch (a later event of an aggregate waits for the next one).
    const relay = async () => {
      let total = 0;
      for (
        let n;
        (n = await publishOutboxBatch(orm, client, { streamKey: eventStreamKey(PREFIX), batchSize: 100 })) > 0;
      )
        total += n;
      return total;
    };
    try {
      // An event published an hour ago (before the given time), then three within it.
      await insert("payment.completed", old);
      t.is(await relay(), 1);
      await orm.em
        .getConnection()
        .execute("update outbox set published_at = now() - interval '1 hour' where aggregate_id = ?", [old]);
      const since = new Date(Date.now() - 60_000);
      await insert("payment.completed", a);
      await insert("payment.completed", b);
      await insert("payment.refunded", a);
      t.is(await relay(), 3);
      const published = await streamEvents();
      t.is(published.length, 4);

      // Redis loses everything it had acknowledged.
      client.disconnect();
      await redis.kill();
      await redis.start();
      t.deepEqual(await streamEvents(), []);

      const run = await runEvents(["--republish-since", since.toISOString()]);
      t.is(run.status, 0, run.stderr);
      t.regex(run.stderr, /3 events published since .+ marked for publishing again/);
      t.regex(run.stdout, /the 3 events published since .+ are on the stream again/);
      const republished = await streamEvents();
      t.deepEqual(
        republished,
        published.filter((e) => e.aggregateId !== old),
        "the same event ids, the old event not again",
      );
      const ofA = republished.filter((e) => e.aggregateId === a).map((e) => e.eventType);
      t.deepEqual(ofA, ["payment.completed", "payment.refunded"]);
      const [{ left }] = await orm.em
        .getConnection()
        .execute<[{ left: number }]>("select count(*)::int as left from outbox where published_at is null");
      t.is(left, 0);
    } finally {
      client.disconnect();
    }
  },
);

test.serial("with Redis unreachable it says so in one line, exits 1 and marks nothing", async (t) => {
  t.timeout(60_000);
  await orm.em.getConnection().execute("update outbox set published_at = now()");
  await redis.kill();
  try {
    const run = await runEvents(["--republish-since", new Date(Date.now() - 3_600_000 * 2).toISOString()]);
    t.not(run.status, 0);
    t.regex(run.stderr, /events: /);
    t.notRegex(run.stderr, /\n\s+at /, "no stack trace");
    const [{ left }] = await orm.em
      .getConnection()
      .execute<[{ left: number }]>("select count(*)::int as left from outbox where published_at is null");
    t.is(left, 0);
  } finally {
    await redis.start();
  }
});

test.serial("a database without the schema is one line that says to migrate, exit 1", async (t) => {
  t.timeout(60_000);
  const empty = await createTestDatabase("eventsrepublish_empty");
  try {
    const run = await runEvents(["--republish-since", new Date().toISOString()], empty.url);
    t.is(run.status, 1);
    t.regex(
      run.stderr,
      /^events: cannot republish from PostgreSQL at .+: apply the migrations first \(npm run migrate\); nothing was changed\n$/,
    );
  } finally {
    await empty.drop();
  }
});
