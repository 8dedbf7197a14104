// Live waiting-room control across two processes sharing PostgreSQL and Redis: a settings change
// made through one applies on the other's next admission step. The test runs the steps itself
// (the timers are set an hour apart), so "within one tick" is checked exactly, without a clock;
// the tests that step run one at a time, since a step admits into every concert.

import { Code } from "@connectrpc/connect";
import test from "ava";
import { AdmissionState, QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { startApp, type App } from "../../src/app.js";
import { createLogger } from "../../src/platform/logger.js";
import { createGrpcClient, type GrpcClient } from "../../src/platform/rpc/grpc-client.js";
import type { TestApp } from "../helpers/app.js";
import { expectError, fieldViolations } from "../helpers/errors.js";
import { adminClient, bearer, OPS_SECRET, startAdminTestApp } from "./admin-app.js";

const ops = bearer(OPS_SECRET);
let a: TestApp;
let b: App;
let queueB: GrpcClient<typeof QueueService>;

test.before(async () => {
  a = await startAdminTestApp("adminqueue", { admissionIntervalMs: 3_600_000, maxActiveUsers: 100 });
  b = await startApp({ ...a.config }, createLogger("silent"));
  queueB = createGrpcClient(QueueService, `127.0.0.1:${b.grpcPort}`);
});

test.after.always(async () => {
  queueB?.close();
  await b?.stop();
  await a?.stop();
});

const step = (app: App) => app.waitingRoom.admission.admitWaitingUsers();

async function states(tokens: string[]): Promise<QueueState[]> {
  return Promise.all(tokens.map(async (token) => (await queueB.getQueueStatus({ token })).status!.state));
}
const count = (list: QueueState[], state: QueueState) => list.filter((s) => s === state).length;

test.serial("cap, pause, close and removal apply on every process at its next admission step", async (t) => {
  const admin = adminClient(a);
  const { concert } = await admin.createConcert({ title: "Live", artist: "A", venue: "V", requestId: "live" }, ops);
  const concertId = concert!.id;
  const update = (settings: object, paths: string[]) =>
    admin.updateQueueSettings({ settings: { concertId, ...settings }, updateMask: { paths } }, ops);

  const defaults = (await admin.getQueueSettings({ concertId }, ops)).settings!;
  t.is(defaults.stored, false);
  t.is(defaults.maxActiveUsers, 100);
  t.is(defaults.admissionState, AdmissionState.OPEN);

  await update({ maxActiveUsers: 2 }, ["max_active_users"]);
  const tokens: string[] = [];
  for (let i = 0; i < 6; i++) tokens.push((await queueB.joinQueue({ concertId, userId: `user-${i}` })).token);

  await step(b);
  t.is(count(await states(tokens), QueueState.ACTIVE), 2, "B applied the cap set through A at its next step");
  await step(a.app);
  t.is(count(await states(tokens), QueueState.ACTIVE), 2);
  // The cap gauge shows the concert's own cap, not MAX_ACTIVE_USERS.
  const metrics = await (await fetch(`${a.connectUrl}/metrics`)).text();
  t.true(metrics.includes(`queue_active_cap{concert_id="${concertId}"} 2`), metrics);

  const raised = (await update({ maxActiveUsers: 4 }, ["max_active_users"])).settings!;
  t.is(raised.maxActiveUsers, 4);
  t.true(raised.stored);
  await step(b);
  t.is(count(await states(tokens), QueueState.ACTIVE), 4);

  const watching = new AbortController();
  const watcherSaw = (async () => {
    for await (const { status } of queueB.watchQueue({ token: tokens[5]! }, { signal: watching.signal }))
      if (status!.admissionState === AdmissionState.PAUSED) return status!.admissionState;
    return undefined;
  })();
  await update({ admissionState: AdmissionState.PAUSED, stateReason: "booking tier overloaded" }, [
    "admission_state",
    "state_reason",
  ]);
  await queueB.leaveQueue({ token: tokens[0]! });
  await queueB.leaveQueue({ token: tokens[1]! });
  await step(b);
  await step(a.app);
  let now = await states(tokens);
  t.is(count(now, QueueState.ACTIVE), 2, "nobody admitted while paused");
  t.is(count(now, QueueState.WAITING), 2, "every place kept while paused");
  const paused = (await queueB.getQueueStatus({ token: tokens[4]! })).status!;
  t.is(paused.position, 1n);
  t.is(paused.admissionState, AdmissionState.PAUSED);
  t.is(paused.admissionStateReason, "booking tier overloaded");
  t.is(paused.estimatedWait, undefined, "the estimate is unknown while paused");
  // A stream opened before the pause hears of it (a heartbeat comes at least every 5 s).
  t.is(await watcherSaw, AdmissionState.PAUSED);

  watching.abort();
  await update({ admissionState: AdmissionState.OPEN }, ["admission_state"]);
  await step(a.app);
  now = await states(tokens);
  t.is(count(now, QueueState.ACTIVE), 4);

  const waiting = (await queueB.joinQueue({ concertId, userId: "user-6" })).token;
  await update({ admissionState: AdmissionState.CLOSED, stateReason: "sold out" }, ["admission_state", "state_reason"]);
  await step(a.app);
  await step(b);
  // JoinQueue stays idempotent: users in line (waiting or admitted) who join again get their place back.
  for (const [userId, token, state] of [
    ["user-6", waiting, QueueState.WAITING],
    ["user-5", tokens[5], QueueState.ACTIVE],
  ] as const) {
    const again = await a.grpc(QueueService).joinQueue({ concertId, userId });
    t.deepEqual([again.token, again.status!.state], [token, state], userId);
  }
  const refused = await expectError(
    t,
    queueB.joinQueue({ concertId, userId: "late" }),
    Code.FailedPrecondition,
    "QUEUE_CLOSED",
  );
  t.regex(refused.message, /sold out/);
  await expectError(
    t,
    a.grpc(QueueService).joinQueue({ concertId, userId: "late" }),
    Code.FailedPrecondition,
    "QUEUE_CLOSED",
  );

  const removed = await admin.removeQueueEntry({ token: tokens[2]!, reason: "abusive client", requestId: "rm-1" }, ops);
  t.is(removed.status!.state, QueueState.EXPIRED);
  t.is((await queueB.getQueueStatus({ token: tokens[2]! })).status!.state, QueueState.EXPIRED);
  await expectError(
    t,
    admin.removeQueueEntry({ token: "0".repeat(32), requestId: "rm-2" }, ops),
    Code.NotFound,
    "QUEUE_ENTRY_NOT_FOUND",
  );

  const { actions } = await admin.listAdminActions({ concertId }, ops);
  t.deepEqual(
    actions.slice(0, 2).map((action) => [action.method.replace("concert.v1.AdminService/", ""), action.outcome]),
    [
      ["RemoveQueueEntry", "OK"],
      ["UpdateQueueSettings", "OK"],
    ],
  );
  t.true(String(actions[0]!.request!.token).endsWith("…"), "the queue token is not stored whole");
  // The failed removal concerned no known concert: it is in the whole log only.
  const [latest] = (await admin.listAdminActions({ pageSize: 1 }, ops)).actions;
  t.deepEqual([latest!.outcome, latest!.errorReason, latest!.concertId], ["NOT_FOUND", "QUEUE_ENTRY_NOT_FOUND", ""]);
});

test("bad settings are INVALID_FIELD naming each field", async (t) => {
  const admin = adminClient(a);
  const { concert } = await admin.createConcert({ title: "Bad", artist: "A", venue: "V", requestId: "bad" }, ops);
  const error = await expectError(
    t,
    admin.updateQueueSettings(
      {
        settings: { concertId: concert!.id, maxActiveUsers: 0, activeTtl: { seconds: 0n } },
        updateMask: { paths: ["max_active_users", "active_ttl", "admission_state", "colour"] },
      },
      ops,
    ),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(error).sort(), [
    "settings.active_ttl",
    "settings.admission_state",
    "settings.max_active_users",
    "update_mask",
  ]);
});

test.serial("users per tick and a concert's own interval pace admission across processes", async (t) => {
  const admin = adminClient(a);
  const { concert } = await admin.createConcert({ title: "Paced", artist: "A", venue: "V", requestId: "paced" }, ops);
  const concertId = concert!.id;
  const pace = (admissionInterval: { seconds?: bigint; nanos?: number }) =>
    admin.updateQueueSettings(
      {
        settings: { concertId, usersPerTick: 1, admissionInterval },
        updateMask: { paths: ["users_per_tick", "admission_interval"] },
      },
      ops,
    );
  await pace({ seconds: 3600n });
  const tokens: string[] = [];
  for (let i = 0; i < 4; i++) tokens.push((await queueB.joinQueue({ concertId, userId: `paced-${i}` })).token);
  await step(a.app);
  t.is(count(await states(tokens), QueueState.ACTIVE), 1, "one user per step");
  await step(b);
  await step(a.app);
  t.is(count(await states(tokens), QueueState.ACTIVE), 1, "one step per interval, whichever process ticks");
  await pace({ nanos: 10_000_000 });
  await step(b);
  t.is(count(await states(tokens), QueueState.ACTIVE), 2, "a new interval applies at the next step");
});

test.serial("a concert's expected session is the wait estimate's prior on every process", async (t) => {
  const admin = adminClient(a);
  const { concert } = await admin.createConcert({ title: "Prior", artist: "A", venue: "V", requestId: "prior" }, ops);
  const concertId = concert!.id;
  const update = (settings: object, paths: string[]) =>
    admin.updateQueueSettings({ settings: { concertId, ...settings }, updateMask: { paths } }, ops);
  t.is((await admin.getQueueSettings({ concertId }, ops)).settings!.expectedSession?.seconds, 120n, "the default");

  await update({ maxActiveUsers: 2, expectedSession: { seconds: 60n } }, ["max_active_users", "expected_session"]);
  t.is((await admin.getQueueSettings({ concertId }, ops)).settings!.expectedSession?.seconds, 60n);
  const tokens: string[] = [];
  for (let i = 0; i < 3; i++) tokens.push((await queueB.joinQueue({ concertId, userId: `prior-${i}` })).token);
  await step(b);
  // Both slots held, none given back yet and this process's first step for the concert (so it
  // did not see them taken): the third waits for one slot, 60 s / 2 slots from that step, then
  // for the next step (an hour away in this test).
  const third = (await queueB.getQueueStatus({ token: tokens[2]! })).status!;
  t.is(third.position, 1n);
  t.true(third.waitTimeKnown);
  const waitS = Number(third.estimatedWait!.seconds) + third.estimatedWait!.nanos / 1e9;
  t.true(waitS > 3600 + 25 && waitS <= 3600 + 30, `${waitS} s`);

  // No prior: nothing honest to say until the line has moved.
  await update({ expectedSession: {} }, ["expected_session"]);
  await step(b);
  const unknown = (await queueB.getQueueStatus({ token: tokens[2]! })).status!;
  t.false(unknown.waitTimeKnown);
  t.is(unknown.estimatedWait, undefined);

  const error = await expectError(
    t,
    update({ expectedSession: { seconds: 86_401n } }, ["expected_session"]),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(error), ["settings.expected_session"]);
});
