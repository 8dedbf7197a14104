// The store row (queue_store) as another process leaves it, written here by hand: while it says
// PostgreSQL with a fresh cut-off, every process serves from PostgreSQL, one that starts meanwhile
// too, and joins through either line up there; once the cut-off goes stale (its process is gone,
// or reaches Redis again), one process restores Redis from PostgreSQL and every process follows
// the row back, with the line as it was.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startApp, type App } from "../../src/app.js";
import { createLogger } from "../../src/platform/logger.js";
import { createGrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { createQueueStore } from "../../src/queue/queue-store.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { openQueueDb } from "../helpers/queue-db.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("queue_store_row", {
    maxActiveUsers: 1,
    admissionIntervalMs: 50,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  await seedSmallCatalog(app, 4);
});

test.after.always(async () => {
  await app?.stop();
});

const sql = (text: string, params: unknown[] = []) => app.app.orm.em.getConnection().execute(text, params);
/** What a process that Redis failed writes, and rewrites while that lasts. */
const cutOffElsewhere = () =>
  sql("update queue_store set store = 'postgres', cut_off_at = now(), cut_off_by = 'elsewhere' where id = 1");

test("a fresh cut-off keeps every process on PostgreSQL, a stale one lets them restore Redis", async (t) => {
  t.timeout(60_000);
  const queue = app.grpc(QueueService);
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const line = [(await queue.joinQueue({ concertId, userId: "holder" })).token];
  await waitFor(async () => (await queue.getQueueStatus({ token: line[0]! })).status!.state === QueueState.ACTIVE, {
    message: () => "holder admitted",
  });
  line.push((await queue.joinQueue({ concertId, userId: "before" })).token);

  await cutOffElsewhere();
  const refresh = setInterval(() => void cutOffElsewhere(), 1000);
  let late: App | undefined;
  try {
    await waitFor(() => app.app.waitingRoom.mode.current === "fallback", { message: () => "the row seen at a tick" });
    late = await startApp({ ...app.config }, createLogger("silent"));
    t.is(late.waitingRoom.mode.current, "fallback", "a process started meanwhile follows the row");
    const lateQueue = createGrpcClient(QueueService, `127.0.0.1:${late.grpcPort}`);
    try {
      const during = await lateQueue.joinQueue({ concertId, userId: "during" });
      t.is(during.status!.position, 2n, "behind the one waiting since before");
      line.push(during.token);
      t.is((await queue.getQueueStatus({ token: during.token })).status!.position, 2n, "known to every process");
      await new Promise((resolve) => setTimeout(resolve, 2000));
      t.is(app.app.waitingRoom.mode.current, "fallback", "held there while the cut-off is fresh");
      t.is(late.waitingRoom.mode.current, "fallback");
    } finally {
      lateQueue.close();
    }
  } finally {
    clearInterval(refresh);
  }
  try {
    await waitFor(() => late!.waitingRoom.mode.current === "redis" && app.app.waitingRoom.mode.current === "redis", {
      timeoutMs: 30_000,
      message: () => `late ${late!.waitingRoom.mode.current}, first ${app.app.waitingRoom.mode.current}`,
    });
    t.deepEqual(await sql("select store, cut_off_at from queue_store"), [{ store: "redis", cut_off_at: null }]);
    for (const [i, token] of line.slice(1).entries())
      t.is((await queue.getQueueStatus({ token })).status!.position, BigInt(i + 1), "the line as it was, on Redis");
  } finally {
    await late?.stop();
  }
});

test("two cut-off processes cannot hand the row back and forth: a fresh cut-off holds the way back, its own too", async (t) => {
  const fixture = await openQueueDb("queue_store_restore");
  try {
    const a = createQueueStore(fixture.db, { processId: "a", freshSeconds: 5 });
    const b = createQueueStore(fixture.db, { processId: "b", freshSeconds: 5 });
    const storeNow = async () => (await fixture.db.query<{ store: string }>("select store from queue_store"))[0]!.store;
    const fills: number[] = [];
    const fill = async (rows: Map<string, unknown>) => void fills.push(rows.size);
    // Both cut off; `a` wrote last, then reaches Redis again while `b` is still cut off.
    await b.toPostgres(true);
    await a.toPostgres(true);
    t.false(await a.restore(60, async () => true, fill), "b may still be cut off: nobody restores");
    t.deepEqual([fills, await storeNow()], [[], "postgres"]);
    // Neither refreshed within the window: Redis is filled and serves again.
    await fixture.db.query("update queue_store set cut_off_at = now() - interval '1 minute'");
    t.true(await a.restore(60, async () => true, fill));
    t.deepEqual([fills, await storeNow()], [[0], "redis"]);
    // Redis lost its data while it served: filled again without any cut-off.
    t.true(await b.restore(60, async () => false, fill));
    t.deepEqual(fills, [0, 0]);
  } finally {
    await fixture.stop();
  }
});
