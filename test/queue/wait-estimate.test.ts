// The wait estimate through the service without a prior (EXPECTED_SESSION_SECONDS=0): unknown
// beyond the free slots until the line has moved, then an estimate from the measured rate, on
// GetQueueStatus and WatchQueue alike.
// Admission steps are run by hand (the loop's own interval is an hour), so nothing depends on timing.

import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";

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

test("unknown until a slot is given back, then estimated from what was measured", async (t) => {
  const queue = app.grpc(QueueService);
  const step = () => app.app.waitingRoom.admission.admitWaitingUsers();
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  const join = async (userId: string) => (await queue.joinQueue({ concertId, userId })).token;
  const status = async (token: string) => (await queue.getQueueStatus({ token })).status!;

  const [a] = [await join("a"), await join("b")];
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
  const waitMs = Number(afterRelease.estimatedWait!.seconds) * 1000 + afterRelease.estimatedWait!.nanos / 1e6;
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
});
