// The wait estimate through the service without a prior (EXPECTED_SESSION_SECONDS=0): unknown
// beyond the free slots until the line has moved, then an estimate from the measured rate, on
// GetQueueStatus and WatchQueue alike; and the clock a join's estimate counts from.
// Admission steps are run by hand (the loop's own interval is an hour); the one timed test holds a
// commit for 1.5 s and asserts only that the estimate is later than a point well inside that.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import pg from "pg";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { waitForLockWaiters } from "../helpers/database.js";

const INTERVAL_MS = 3_600_000;
const TTL_SECONDS = 600;
let app: TestApp;

test.before(async () => {
  app = await startTestApp("queue_wait_estimate", {
    maxActiveUsers: 2,
    admissionIntervalMs: INTERVAL_MS,
    activeTokenTtlSeconds: TTL_SECONDS,
    expectedSessionSeconds: 0,
  });
  await seedSmallCatalog(app, 4);
});

test.after.always(async () => {
  await app?.stop();
});

const ms = (time: { seconds: bigint; nanos: number }) => Number(time.seconds) * 1000 + time.nanos / 1e6;

// Serial, so it runs before the test below and leaves the line as it found it.
test.serial(
  "a join's estimate counts from its answer, not from the read that then waited for the commit",
  async (t) => {
    const queue = app.grpc(QueueService);
    const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    // Hold the join's commit behind a lock on the table until well after its Redis read.
    const holder = new pg.Client({ connectionString: app.config.databaseUrl });
    await holder.connect();
    t.teardown(() => holder.end().catch(() => undefined));
    await holder.query("begin");
    await holder.query("lock table queue_entry in share mode");
    const pid = (await holder.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
    const answer = queue.joinQueue({ concertId, userId: "slow-commit" });
    await waitForLockWaiters(app.config.databaseUrl, pid, 1);
    const blockedMs = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await holder.query("commit");
    const { token, status } = await answer;
    const answeredMs = Date.now();
    t.teardown(() => queue.leaveQueue({ token }).then(() => undefined));
    t.true(status!.waitTimeKnown, "the place is within the free slots");
    // estimated_wait = estimated_admission_time - now (queue.proto), now being when the answer left:
    // after the 1.5 s hold (less however late this busy process handled Redis's answer), not before it.
    const estimateNowMs = ms(status!.estimatedAdmissionTime!) - ms(status!.estimatedWait!);
    t.true(estimateNowMs >= blockedMs + 500, `estimate as of ${estimateNowMs - blockedMs} ms after the commit blocked`);
    t.true(estimateNowMs <= answeredMs + 1000, `estimate as of ${estimateNowMs - answeredMs} ms after the answer`);
  },
);

test("unknown until a slot is given back, then estimated from what was measured", async (t) => {
  const queue = app.grpc(QueueService);
  const step = () => app.app.waitingRoom.admission.admitWaitingUsers();
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const join = async (userId: string) => (await queue.joinQueue({ concertId, userId })).token;
  const status = async (token: string) => (await queue.getQueueStatus({ token })).status!;

  const [a, b] = [await join("a"), await join("b")];
  await step();
  t.is((await status(a!)).state, QueueState.ACTIVE);
  const c = await join("c");
  const d = await join("d");
  // Both slots held and none ever given back: nothing honest to say about c or d.
  for (const token of [c, d]) {
    const waiting = await status(token);
    t.is(waiting.state, QueueState.WAITING);
    t.false(waiting.waitTimeKnown);
    t.is(waiting.estimatedWait, undefined);
  }

  await queue.leaveQueue({ token: a! });
  await step();
  t.is((await status(c)).state, QueueState.ACTIVE, "the slot a gave back went to c");
  // One slot given back and filled again between the two steps while c waited: d, first in line
  // with both slots held again, is expected after one more such turn and the step after it.
  const afterRelease = await status(d);
  t.is(afterRelease.position, 1n);
  t.true(afterRelease.waitTimeKnown);
  const waitMs = ms(afterRelease.estimatedWait!);
  t.true(waitMs >= INTERVAL_MS, `${waitMs} ms`);
  // At most the next step plus a whole turn of a slot: none is held longer than ACTIVE_TOKEN_TTL.
  t.true(waitMs <= INTERVAL_MS + TTL_SECONDS * 1000, `${waitMs} ms`);
  t.truthy(afterRelease.estimatedAdmissionTime);

  // A watcher gets the same estimate in its first message.
  const watching = new AbortController();
  for await (const message of queue.watchQueue({ token: d }, { signal: watching.signal })) {
    t.true(message.status!.waitTimeKnown);
    t.truthy(message.status!.estimatedWait);
    break;
  }
  watching.abort();

  // A watcher that hears of its admission tells the estimate how long that took.
  t.is(app.app.waitingRoom.lineMeasures(concertId).heardMs, undefined, "no watcher has heard of an admission yet");
  const admitted = new AbortController();
  const heard = (async () => {
    for await (const message of queue.watchQueue({ token: d }, { signal: admitted.signal }))
      if (message.status!.state === QueueState.ACTIVE) return;
  })();
  await queue.leaveQueue({ token: b! });
  await step();
  await heard;
  admitted.abort();
  const heardMs = app.app.waitingRoom.lineMeasures(concertId).heardMs;
  t.true(heardMs !== undefined && heardMs >= 0, `${heardMs}`);
});
