// A watched place Redis misses is not ended on Redis's word. A join made on PostgreSQL while Redis
// was down can commit after the fill that switched the process back to Redis; until the next
// check merges it, Redis does not know the token. The WatchQueue tick used to tell that user
// EXPIRED (the Redis-outage load test saw 72-464 such users join again, at the back); it now asks
// the record, which ends a place before Redis drops it. While the record cannot answer, those
// streams keep their last status, and the outage is logged once, not every tick. A tick held up
// by a store that does not answer leaves the streams their heartbeats, with the last status.

import { randomUUID } from "node:crypto";
import test from "ava";
import { pino } from "pino";
import { createLogger } from "../../src/platform/logger.js";
import { admit } from "../../src/queue/pg-admission.js";
import { createPgQueue, type PgQueue } from "../../src/queue/pg-queue.js";
import type { QueueStatus } from "../../src/queue/queue-status.js";
import { createWatchHub, type WatchHub, type WatchUpdate } from "../../src/queue/watch-hub.js";
import { HAND_STEPPED_RULE, openQueueDb, quietQueueMode, type QueueDbFixture } from "../helpers/queue-db.js";
import { redisQueueFixture } from "../helpers/redis-queue.js";

const RULE = HAND_STEPPED_RULE;

const { redis, queue } = redisQueueFixture("watch-missed-join");
let fixture: QueueDbFixture;

test.before(async () => {
  fixture = await openQueueDb("watch_missed_join", { poolMax: 4 });
});

test.after.always(async () => {
  await fixture?.stop();
});

function setup(overrides: Partial<Parameters<typeof createWatchHub>[0]> = {}) {
  const mode = quietQueueMode({ redis, redisQueue: queue, db: fixture.db });
  const pg = createPgQueue(fixture.db);
  const hub = createWatchHub({
    mode,
    redisQueue: queue,
    pg,
    logger: createLogger("silent"),
    ...overrides,
    // Heartbeats often, so a stream that is told nothing new still shows what it is told.
    settings: { tickMs: 20, heartbeatMs: 100, touchEveryMs: 1000 },
  });
  return { mode, pg, hub };
}

/** Takes updates until `until` says stop (or 20 s pass, a bound for a busy machine only). */
async function take(
  stream: AsyncGenerator<WatchUpdate>,
  until: (update: WatchUpdate, seen: WatchUpdate[]) => boolean,
): Promise<WatchUpdate[]> {
  const seen: WatchUpdate[] = [];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const { value, done } = await stream.next();
    if (done) break;
    seen.push(value);
    if (until(value, seen)) break;
  }
  return seen;
}

/** A place made on the record alone (Redis never heard of it), as the record tells it. */
async function joinOnRecord(record: PgQueue, userId: string): Promise<{ concertId: string; first: QueueStatus }> {
  const concertId = randomUUID();
  const [joined] = await record.joinMany([{ concertId, userId, freshToken: randomUUID() }]);
  const [first] = await record.statuses([joined!.token]);
  return { concertId, first: first as QueueStatus };
}

/** A WatchQueue stream from `first`, and how to end it. */
function watchFrom(hub: WatchHub, first: QueueStatus) {
  const controller = new AbortController();
  const stream = hub.watch(first, controller.signal);
  return {
    stream,
    async stop() {
      controller.abort();
      await stream.return(undefined);
    },
  };
}

test("a watched join Redis misses stays WAITING, then is admitted once merged", async (t) => {
  const { mode, pg, hub } = setup();
  await mode.check();
  t.is(mode.state, "redis");
  // Made on PostgreSQL and noted, as by a join in flight when the process switched back to Redis.
  const { concertId, first } = await joinOnRecord(pg, "late");
  t.is(await queue.status(first.token, false), undefined);
  const { stream, stop } = watchFrom(hub, first);
  // The first message, then three ticks' heartbeats: none may say EXPIRED.
  const early = await take(stream, (update, seen) => update.status.state !== "WAITING" || seen.length >= 4);
  t.deepEqual(
    early.map((update) => update.status.state),
    ["WAITING", "WAITING", "WAITING", "WAITING"],
  );
  // The next check merges it into Redis; an admission step then lets it in, and the stream says so.
  await mode.check();
  t.is((await queue.status(first.token, false))?.state, "WAITING");
  const step = await admit(fixture.db, concertId, RULE, queue);
  await queue.apply(concertId, step.active, [...step.expired, ...step.abandoned]);
  t.deepEqual(step.admitted, [first.token]);
  const rest = await take(stream, (update) => update.status.state !== "WAITING");
  t.is(rest.at(-1)?.status.state, "ACTIVE");
  await stop();
});

test("a watched place the record ended is told EXPIRED", async (t) => {
  const { mode, pg, hub } = setup();
  await mode.check();
  t.is(mode.state, "redis");
  const { first } = await joinOnRecord(pg, "gone");
  await pg.end(first.token);
  const { stream, stop } = watchFrom(hub, first);
  const updates = await take(stream, (update) => update.status.state !== "WAITING");
  t.is(updates.at(-1)?.status.state, "EXPIRED");
  await stop();
});

// Serial: another test's store check would merge this test's missed join into Redis, ending the outage it stages.
test.serial(
  "while the record cannot be asked, a place Redis misses keeps its status, and that is logged once",
  async (t) => {
    // A second database without the queue's table: every question to that record really fails.
    const broken = await openQueueDb("watch_missed_join_down", { poolMax: 1 });
    t.teardown(() => broken.stop());
    await broken.db.query("drop table queue_entry cascade");
    const [upRecord, downRecord] = [createPgQueue(fixture.db), createPgQueue(broken.db)];
    let recordUp = false;
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { mode, hub } = setup({
      logger,
      pg: { ...upRecord, statuses: (tokens) => (recordUp ? upRecord : downRecord).statuses(tokens) },
    });
    await mode.check();
    const { first } = await joinOnRecord(upRecord, "unconfirmed");
    const { stream, stop } = watchFrom(hub, first);
    // Five heartbeats: a tick every 20 ms, each failing to ask the record.
    const down5 = await take(stream, (update, seen) => update.status.state !== "WAITING" || seen.length >= 6);
    t.true(
      down5.every((update) => update.status.state === "WAITING"),
      JSON.stringify(down5.map((u) => u.status.state)),
    );
    const warned = () => lines.filter((line) => line.msg.startsWith("could not confirm ended places")).length;
    t.is(warned(), 1, "logged once for the outage, not every tick");
    recordUp = true;
    const recovered = () => lines.filter((line) => line.msg === "confirming ended places with the record again").length;
    // Heartbeats keep coming (the stream is drained) until a tick has asked the record again.
    const after = await take(stream, () => recovered() > 0);
    t.is(recovered(), 1, "and once when it answers again");
    t.true(after.every((update) => update.status.state === "WAITING"));
    t.is(warned(), 1);
    await stop();
  },
);

test("a store that does not answer a tick does not silence the streams: heartbeats keep the last status", async (t) => {
  // The watch read hangs, as a paused Redis holds it until the command timeout (and may again).
  const { mode, pg, hub } = setup({ redisQueue: { ...queue, watch: () => new Promise<never>(() => undefined) } });
  await mode.check();
  t.is(mode.state, "redis");
  const { first } = await joinOnRecord(pg, "held-up");
  const watching = watchFrom(hub, first);
  const seen = await take(watching.stream, (_, all) => all.length === 4);
  await watching.stop();
  t.is(seen.length, 4, "the first message and three heartbeats");
  t.deepEqual(
    seen.slice(1).map((update) => [update.heartbeat, update.status.state, update.status.position]),
    Array.from({ length: 3 }, () => [true, "WAITING", first.position]),
  );
});
