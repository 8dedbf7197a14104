// The fallback marks in queue_fallback as other processes leave them, written here by hand: a
// process back on Redis admits nobody while another still serves from PostgreSQL (it switches
// back within a probe interval, and until then it admits and takes leaves there), and a process
// that starts while another is cut off from Redis starts in fallback instead of rebuilding Redis.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startApp, type App } from "../../src/app.js";
import { createLogger } from "../../src/platform/logger.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("queue_fallback_marks", {
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
const markOf = (processId: string, following: boolean) =>
  sql(
    "insert into queue_fallback (process_id, since, seen_at, following) values (?, now(), now(), ?) on conflict (process_id) do update set seen_at = now()",
    [processId, following],
  );

/** One user holding the only slot (cap 1) and one waiting behind them. */
async function holderAndWaiter(holderId: string, waiterId: string) {
  const queue = app.grpc(QueueService);
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const holder = (await queue.joinQueue({ concertId, userId: holderId })).token;
  await waitFor(async () => (await queue.getQueueStatus({ token: holder })).status!.state === QueueState.ACTIVE, {
    message: () => `${holderId} admitted`,
  });
  const waiter = (await queue.joinQueue({ concertId, userId: waiterId })).token;
  return { queue, holder, waiter };
}

test.serial(
  "back on Redis, a process admits nobody while another process is still in fallback, and resumes once it is back",
  async (t) => {
    t.timeout(30_000);
    const { queue, holder: first, waiter: next } = await holderAndWaiter("first", "next");

    // A process that followed another into fallback and has not switched back yet.
    await markOf("still-in-fallback", true);
    await waitFor(() => app.app.waitingRoom.mode.othersStillInFallback, { message: () => "the mark seen at a tick" });
    t.is(app.app.waitingRoom.mode.current, "redis", "a following mark does not send others into fallback");
    await queue.leaveQueue({ token: first });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // twenty admission ticks
    t.is(
      (await queue.getQueueStatus({ token: next })).status!.state,
      QueueState.WAITING,
      "nobody admitted while the other admits from PostgreSQL",
    );

    await sql("delete from queue_fallback where process_id = 'still-in-fallback'");
    await waitFor(async () => (await queue.getQueueStatus({ token: next })).status!.state === QueueState.ACTIVE, {
      message: () => "admission resumed",
    });
    await queue.leaveQueue({ token: next });
  },
);

test.serial(
  "a process started while another is cut off from Redis starts in fallback, and both come back once the mark is gone",
  async (t) => {
    t.timeout(60_000);
    await markOf("cut-off", false);
    let late: App | undefined;
    try {
      late = await startApp({ ...app.config }, createLogger("silent"));
      t.is(late.waitingRoom.mode.current, "fallback");
      await sql("delete from queue_fallback where process_id = 'cut-off'");
      await waitFor(() => late!.waitingRoom.mode.current === "redis" && app.app.waitingRoom.mode.current === "redis", {
        timeoutMs: 30_000,
        message: () => `late ${late!.waitingRoom.mode.current}, first ${app.app.waitingRoom.mode.current}`,
      });
      // Neither leaves a mark behind once back on Redis (a process removes its mark right after
      // it switched, so the last removal may still be on its way).
      let marks: unknown[] = [];
      await waitFor(async () => (marks = await sql("select process_id from queue_fallback")).length === 0, {
        timeoutMs: 5000,
        message: () => JSON.stringify(marks),
      });
      t.deepEqual(marks, []);
    } finally {
      await late?.stop();
    }
  },
);

test.serial("a process that stays in fallback holds admission for 10 s at most", async (t) => {
  t.timeout(60_000);
  const { queue, holder: first, waiter: next } = await holderAndWaiter("holder", "patient");
  // A follower whose way back keeps failing: its mark stays fresh.
  await markOf("stuck", true);
  const refresh = setInterval(() => void markOf("stuck", true), 1000);
  try {
    await waitFor(() => app.app.waitingRoom.mode.othersStillInFallback, { message: () => "the mark seen at a tick" });
    const paused = Date.now();
    await queue.leaveQueue({ token: first });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    t.is(
      (await queue.getQueueStatus({ token: next })).status!.state,
      QueueState.WAITING,
      "held while the mark is young",
    );
    await waitFor(async () => (await queue.getQueueStatus({ token: next })).status!.state === QueueState.ACTIVE, {
      timeoutMs: 20_000,
      message: () => "admission resumed",
    });
    const waited = Date.now() - paused;
    t.true(waited >= 9_000 && waited < 16_000, `admitted after ${waited} ms`);
  } finally {
    clearInterval(refresh);
    await sql("delete from queue_fallback where process_id = 'stuck'");
  }
  await queue.leaveQueue({ token: next });
});
