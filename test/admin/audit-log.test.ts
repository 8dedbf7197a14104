// Every admin call that changes something is in the audit log, with its token's name (never a
// secret), method, request, outcome and time; reads do not write it; ListAdminActions pages it.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import test from "ava";
import { ScheduleState } from "../../gen/concert/v1/admin_pb.js";
import type { TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";
import { adminClient, AUDITOR_SECRET, bearer, OPS_SECRET, startAdminTestApp } from "./admin-app.js";
import { grpcurl } from "./grpcurl.js";

let app: TestApp;
const ops = bearer(OPS_SECRET);

test.before(async () => {
  app = await startAdminTestApp("adminaudit");
});

test.after.always(async () => {
  await app?.stop();
});

test("changes are recorded with token name, method, request and outcome; reads are not", async (t) => {
  const admin = adminClient(app);
  const started = Date.now();
  const { concert } = await admin.createConcert(
    { title: "Audited", artist: "A", venue: "V", requestId: "audit-1" },
    ops,
  );
  const { concert: other } = await admin.createConcert(
    { title: "Other", artist: "A", venue: "V", requestId: "audit-2" },
    ops,
  );
  const { schedule } = await admin.createSchedule(
    {
      concertId: concert!.id,
      startsAt: timestampFromDate(new Date(Date.now() + 30 * 86_400_000)),
      sections: [{ name: "A", grade: "A", rows: 1, seatsPerRow: 3, price: { amountMinor: 100n } }],
      requestId: "audit-schedule",
    },
    bearer(AUDITOR_SECRET),
  );
  await admin.listSchedules({ concertId: concert!.id }, ops);
  await admin.updateSchedule(
    { scheduleId: schedule!.id, state: ScheduleState.CANCELLED, updateMask: { paths: ["state"] } },
    ops,
  );
  await expectError(
    t,
    admin.updateSchedule(
      { scheduleId: schedule!.id, state: ScheduleState.PUBLISHED, updateMask: { paths: ["state"] } },
      ops,
    ),
    Code.FailedPrecondition,
  );
  // Refused before anything runs: no token name to record.
  await expectError(
    t,
    admin.createConcert({ title: "x", artist: "x", venue: "x", requestId: "nope" }),
    Code.Unauthenticated,
  );

  const { actions } = await admin.listAdminActions({ concertId: concert!.id }, ops);
  t.deepEqual(
    actions.map((a) => [a.tokenName, a.method.replace("concert.v1.AdminService/", ""), a.outcome, a.errorReason]),
    [
      ["ops", "UpdateSchedule", "FAILED_PRECONDITION", "SCHEDULE_NOT_UPDATABLE"],
      ["ops", "UpdateSchedule", "OK", ""],
      ["auditor", "CreateSchedule", "OK", ""],
      ["ops", "CreateConcert", "OK", ""],
    ],
  );
  for (const action of actions) {
    t.is(action.concertId, concert!.id);
    const at = Number(action.createTime!.seconds) * 1000;
    t.true(at >= started - 60_000 && at <= Date.now() + 60_000);
  }
  t.like(actions[2]!.request, { concertId: concert!.id, requestId: "audit-schedule" });
  t.like(actions[3]!.request, { title: "Audited", requestId: "audit-1" });
  const all = await admin.listAdminActions({}, ops);
  t.true(all.actions.some((a) => a.concertId === other!.id));
  for (const action of all.actions) t.false(JSON.stringify(action.request).includes(OPS_SECRET));
});

test("ListAdminActions pages newest first without gaps", async (t) => {
  const admin = adminClient(app);
  const { concert } = await admin.createConcert({ title: "Paged", artist: "A", venue: "V", requestId: "paged" }, ops);
  for (const title of ["t1", "t2", "t3", "t4", "t5"]) {
    await admin.updateConcert({ concert: { id: concert!.id, title }, updateMask: { paths: ["title"] } }, ops);
  }
  const seen: string[] = [];
  let pageToken = "";
  do {
    const page = await admin.listAdminActions({ concertId: concert!.id, pageSize: 2, pageToken }, ops);
    seen.push(
      ...page.actions.map((a) => String(a.request!.concert && (a.request!.concert as { title?: string }).title)),
    );
    pageToken = page.nextPageToken;
  } while (pageToken);
  t.deepEqual(
    seen,
    ["t5", "t4", "t3", "t2", "t1", "Paged"].map((title, i) => (i < 5 ? title : "undefined")),
  );
});

test("grpcurl reads the audit log", async (t) => {
  // Filtered by this test's concert: the other tests in this file write the log at the same time.
  const { concert } = await adminClient(app).createConcert(
    { title: "Seen", artist: "A", venue: "V", requestId: "grpcurl-audit" },
    ops,
  );
  const result = await grpcurl([
    "-plaintext",
    "-H",
    `authorization: Bearer ${OPS_SECRET}`,
    "-d",
    JSON.stringify({ concertId: concert!.id, pageSize: 1 }),
    app.grpcAddress,
    "concert.v1.AdminService/ListAdminActions",
  ]);
  t.is(result.code, 0, result.stderr);
  const { actions } = JSON.parse(result.stdout) as {
    actions: { tokenName: string; outcome: string; request: object }[];
  };
  t.is(actions.length, 1);
  t.is(actions[0]!.tokenName, "ops");
  t.like(actions[0]!.request, { title: "Seen", requestId: "grpcurl-audit" });
});
