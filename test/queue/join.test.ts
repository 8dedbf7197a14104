import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { expectError, fieldViolations } from "../helpers/errors.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;
let concertId: string;

test.before(async () => {
  // Cap 1 and a long active TTL: the first joiner is admitted, everyone else keeps waiting.
  app = await startTestApp("queue_join", { maxActiveUsers: 1, admissionIntervalMs: 100, activeTokenTtlSeconds: 600 });
  await seedSmallCatalog(app, 4);
  concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
});

test.after.always(async () => {
  await app?.stop();
});

const rows = (tokens: string[]) =>
  app.app.orm.em
    .getConnection()
    .execute<{ token: string; seq: string; state: string }[]>(
      `select token, seq::text as seq, state from queue_entry where token in (${tokens.map(() => "?").join(",")}) order by seq`,
      tokens,
    );

test.serial("joins are FIFO, idempotent per user and concert, and in PostgreSQL once acknowledged", async (t) => {
  const queue = app.grpc(QueueService);
  const firstJoinedMs = Date.now();
  const first = await queue.joinQueue({ concertId, userId: "fifo-0" });
  t.regex(first.token, /^[0-9a-f]{32}$/);
  // Once the only slot is taken, positions stand still: nobody else is admitted.
  await waitFor(async () => (await queue.getQueueStatus({ token: first.token })).status!.state === QueueState.ACTIVE);
  const others = [];
  for (let i = 1; i <= 5; i++) others.push(await queue.joinQueue({ concertId, userId: `fifo-${i}` }));
  const sinceFirstMs = Date.now() - firstJoinedMs;
  const positions = others.map((r) => r.status!.position);
  for (let i = 1; i < positions.length; i++) t.is(positions[i], positions[i - 1]! + 1n);
  t.is(others[0]!.status!.usersAhead, others[0]!.status!.position - 1n);
  t.is(others[0]!.status!.state, QueueState.WAITING);
  // The only slot is held and none was given back yet: the prior, one EXPECTED_SESSION_SECONDS
  // (120 by default) from the slot's admission, then the next step (test/queue/wait-estimate.test.ts).
  // The estimate counts from its answer, so what has passed since the admission (at most since
  // fifo-0 joined; seconds on a busy machine) is off it.
  t.true(others[0]!.status!.waitTimeKnown);
  const { seconds, nanos } = others[0]!.status!.estimatedWait!;
  const firstWaitMs = Number(seconds) * 1000 + nanos / 1e6;
  t.true(
    firstWaitMs >= 120_000 - sinceFirstMs && firstWaitMs < 130_000,
    `${firstWaitMs} ms, ${sinceFirstMs} ms after fifo-0 joined`,
  );

  const again = await app.connect(QueueService).joinQueue({ concertId, userId: "fifo-3" });
  t.is(again.token, others[2]!.token);

  const stored = await rows([first.token, ...others.map((r) => r.token)]);
  t.deepEqual(
    stored.map((r) => r.token),
    [first.token, ...others.map((r) => r.token)],
  );
});

test.serial("GetQueueStatus reports position and total; LeaveQueue frees the place at once", async (t) => {
  const queue = app.grpc(QueueService);
  const a = await queue.joinQueue({ concertId, userId: "leave-a" });
  const b = await queue.joinQueue({ concertId, userId: "leave-b" });
  const before = (await queue.getQueueStatus({ token: b.token })).status!;
  t.is(before.state, QueueState.WAITING);
  t.true(before.totalWaiting >= before.position);
  const left = (await queue.leaveQueue({ token: a.token })).status!;
  t.is(left.state, QueueState.EXPIRED);
  const after = (await queue.getQueueStatus({ token: b.token })).status!;
  t.is(after.position, before.position - 1n);
  const [row] = await rows([a.token]);
  t.is(row!.state, "EXPIRED");
  const rejoined = await queue.joinQueue({ concertId, userId: "leave-a" });
  t.not(rejoined.token, a.token);
  t.true(rejoined.status!.position > after.position);
});

test("bad queue requests are INVALID_ARGUMENT, unknown ones NOT_FOUND or QUEUE_TOKEN_INVALID", async (t) => {
  const queue = app.grpc(QueueService);
  const error = await expectError(
    t,
    queue.joinQueue({ concertId: "nope", userId: "" }),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(error), ["concert_id", "user_id"]);
  await expectError(
    t,
    queue.joinQueue({ concertId: "00000000-0000-0000-0000-000000000000", userId: "u" }),
    Code.NotFound,
    "CONCERT_NOT_FOUND",
  );
  await expectError(t, queue.getQueueStatus({ token: "XYZ" }), Code.InvalidArgument, "INVALID_FIELD");
  await expectError(t, queue.getQueueStatus({ token: "0".repeat(32) }), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
  await expectError(t, queue.leaveQueue({ token: "1".repeat(32) }), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
});

test("a concert id in uppercase is INVALID_FIELD, not a second line for the same concert", async (t) => {
  const queue = app.grpc(QueueService);
  await queue.joinQueue({ concertId, userId: "case-user" });
  const error = await expectError(
    t,
    queue.joinQueue({ concertId: concertId.toUpperCase(), userId: "case-user" }),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(error), ["concert_id"]);
});

test("the wait estimate: places the free slots take go in at the next admission step; further back a session after the slots were taken", async (t) => {
  // Three free slots and an admission step every 5 s (none has run yet when the users join).
  const quiet = await startTestApp("queue_join_estimate", {
    maxActiveUsers: 3,
    admissionIntervalMs: 5000,
    activeTokenTtlSeconds: 600,
    expectedSessionSeconds: 30,
  });
  try {
    await seedSmallCatalog(quiet, 4);
    const concert = (await quiet.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    const queue = quiet.grpc(QueueService);
    const joined = [];
    for (const userId of ["a", "b", "c", "d"])
      joined.push((await queue.joinQueue({ concertId: concert, userId })).status!);
    t.true(
      joined.every((s) => s.state === QueueState.WAITING),
      "no admission step ran yet",
    );
    // Positions 1–3 fit the free slots: the next step, at most 5 s away.
    for (const status of joined.slice(0, 3)) {
      t.is(status.estimatedWait?.seconds, 5n, `position ${status.position}`);
      t.true(status.waitTimeKnown);
    }
    // Position 4 waits for a slot to come back: the three are taken together at the next step
    // and each is expected back one 30 s session later, then half a step until a step fills it.
    t.true(joined[3]!.waitTimeKnown);
    t.is(joined[3]!.estimatedWait?.seconds, 5n + 30n + 2n);
    t.truthy(joined[3]!.estimatedAdmissionTime);
  } finally {
    await quiet.stop();
  }
});
