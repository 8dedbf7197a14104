// AdminService catalog: concerts, schedules with big seat maps (idempotent), what users see of
// drafts, sale windows and cancelled schedules, and refunds when a sold schedule is cancelled.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import test from "ava";
import { ScheduleState } from "../../gen/concert/v1/admin_pb.js";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import type { TestApp } from "../helpers/app.js";
import { expectError, fieldViolations } from "../helpers/errors.js";
import { admitUser, withToken } from "../helpers/queue.js";
import { adminClient, bearer, OPS_SECRET, startAdminTestApp } from "./admin-app.js";
import { grpcurl } from "./grpcurl.js";

let app: TestApp;
const ops = bearer(OPS_SECRET);
const DAY = 86_400_000;
const inDays = (days: number) => timestampFromDate(new Date(Date.now() + days * DAY));

test.before(async () => {
  app = await startAdminTestApp("admincatalog", { admissionIntervalMs: 100 });
});

test.after.always(async () => {
  await app?.stop();
});

const section = (name: string, rows: number, seatsPerRow: number, price: bigint, grade = "A") => ({
  name,
  grade,
  rows,
  seatsPerRow,
  price: { amountMinor: price },
});

async function newConcert(requestId: string) {
  const { concert } = await adminClient(app).createConcert(
    { title: `Title ${requestId}`, artist: "Artist", venue: "Hall", requestId },
    ops,
  );
  return concert!;
}

async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return app.app.orm.em.fork().getConnection().execute<T[]>(sql, params);
}

test("CreateConcert is idempotent on request_id and refuses the id with other arguments", async (t) => {
  const admin = adminClient(app);
  const first = await newConcert("concert-once");
  const again = await newConcert("concert-once");
  t.is(again.id, first.id);
  const reused = await expectError(
    t,
    admin.createConcert({ title: "Other", artist: "Artist", venue: "Hall", requestId: "concert-once" }, ops),
    Code.InvalidArgument,
    "IDEMPOTENCY_KEY_REUSED",
  );
  t.deepEqual(fieldViolations(reused), ["request_id"]);
  const updated = await admin.updateConcert(
    { concert: { id: first.id, title: "New title", venue: "ignored" }, updateMask: { paths: ["title"] } },
    ops,
  );
  t.is(updated.concert!.title, "New title");
  t.is(updated.concert!.venue, "Hall");
  // A retry after the update still answers what the first call did.
  t.deepEqual(await newConcert("concert-once"), first);
});

test("CreateSchedule makes 100,000 seats in one call, and a retry makes none", async (t) => {
  const admin = adminClient(app);
  const concert = await newConcert("big-concert");
  const request = {
    concertId: concert.id,
    startsAt: inDays(30),
    sections: [section("ARENA", 200, 250, 15_000n, "S"), section("STAND", 200, 250, 8_000n, "B")],
    requestId: "big-schedule",
  };
  const [first, racing] = await Promise.all([admin.createSchedule(request, ops), admin.createSchedule(request, ops)]);
  t.is(first.schedule!.id, racing.schedule!.id);
  t.is(first.schedule!.totalSeats, 100_000n);
  t.is(first.schedule!.state, ScheduleState.PUBLISHED);
  t.deepEqual(
    first.schedule!.sections.map((s) => [s.name, s.rows, s.seatsPerRow, s.price!.amountMinor]),
    [
      ["ARENA", 200, 250, 15_000n],
      ["STAND", 200, 250, 8_000n],
    ],
  );
  const retry = await admin.createSchedule(request, ops);
  t.is(retry.schedule!.id, first.schedule!.id);
  const seats = await query<{ n: string; distinct_no: string; min_no: number; max_no: number; total: string }>(
    `select count(*) as n, count(distinct seat_no) as distinct_no, min(seat_no) as min_no, max(seat_no) as max_no,
            sum(price_minor) as total from seat where schedule_id = ?`,
    [first.schedule!.id],
  );
  t.deepEqual(seats[0], {
    n: "100000",
    distinct_no: "100000",
    min_no: 1,
    max_no: 100_000,
    total: String(50_000n * 15_000n + 50_000n * 8_000n),
  });
  const labels = await query<{ label: string; grade: string }>(
    `select label, grade from seat where schedule_id = ? and seat_no in (1, 250, 251, 50001) order by seat_no`,
    [first.schedule!.id],
  );
  t.deepEqual(labels, [
    { label: "ARENA-1-1", grade: "S" },
    { label: "ARENA-1-250", grade: "S" },
    { label: "ARENA-2-1", grade: "S" },
    { label: "STAND-1-1", grade: "B" },
  ]);
  await expectError(
    t,
    admin.createSchedule({ ...request, startsAt: inDays(31) }, ops),
    Code.InvalidArgument,
    "IDEMPOTENCY_KEY_REUSED",
  );
});

test("CreateSchedule refuses more than 100,000 seats and names every bad field", async (t) => {
  const concert = await newConcert("bad-schedule-concert");
  const error = await expectError(
    t,
    adminClient(app).createSchedule(
      {
        concertId: concert.id,
        startsAt: inDays(10),
        saleOpensAt: inDays(5),
        saleClosesAt: inDays(4),
        sections: [section("A", 1000, 100, 100n), section("A", 1, 1, 0n, "Z")],
        requestId: "too-big",
      },
      ops,
    ),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(error).sort(), [
    "sale_closes_at",
    "sections",
    "sections[1].grade",
    "sections[1].name",
    "sections[1].price.amount_minor",
  ]);
});

test("users see published schedules on sale or coming; admins see drafts and cancelled ones too", async (t) => {
  const admin = adminClient(app);
  const booking = app.grpc(BookingService);
  const concert = await newConcert("visibility");
  const make = (requestId: string, extra: object) =>
    admin.createSchedule(
      { concertId: concert.id, startsAt: inDays(20), sections: [section("F", 1, 5, 1000n)], requestId, ...extra },
      ops,
    );
  const draft = (await make("vis-draft", { draft: true })).schedule!;
  const isListed = async () =>
    (await booking.listConcerts({ pageSize: 500 })).concerts.some((c) => c.id === concert.id);
  t.false(await isListed(), "a concert with only a draft is not listed");

  const coming = (await make("vis-coming", { saleOpensAt: inDays(2) })).schedule!;
  const closed = (await make("vis-closed", {})).schedule!;
  await admin.updateSchedule(
    {
      scheduleId: closed.id,
      saleOpensAt: inDays(-3),
      saleClosesAt: inDays(-1),
      updateMask: { paths: ["sale_opens_at", "sale_closes_at"] },
    },
    ops,
  );
  const cancelled = (await make("vis-cancelled", {})).schedule!;
  await admin.updateSchedule(
    { scheduleId: cancelled.id, state: ScheduleState.CANCELLED, updateMask: { paths: ["state"] } },
    ops,
  );
  t.true(await isListed());

  const token = await admitUser(app, concert.id, "visibility-user");
  const publicIds = async () =>
    (await booking.listSchedules({ concertId: concert.id }, withToken(token))).schedules.map((s) => s.id);
  t.deepEqual(await publicIds(), [coming.id]);

  await admin.updateSchedule(
    { scheduleId: draft.id, state: ScheduleState.PUBLISHED, updateMask: { paths: ["state"] } },
    ops,
  );
  t.deepEqual((await publicIds()).sort(), [coming.id, draft.id].sort());
  await expectError(
    t,
    admin.updateSchedule({ scheduleId: draft.id, state: ScheduleState.DRAFT, updateMask: { paths: ["state"] } }, ops),
    Code.FailedPrecondition,
    "SCHEDULE_NOT_UPDATABLE",
  );

  // Three a page: the four schedules take two pages.
  const first = await admin.listSchedules({ concertId: concert.id, pageSize: 3 }, ops);
  t.is(first.schedules.length, 3);
  const all = [...first.schedules];
  let pageToken = first.nextPageToken;
  while (pageToken) {
    const page = await admin.listSchedules({ concertId: concert.id, pageSize: 3, pageToken }, ops);
    all.push(...page.schedules);
    pageToken = page.nextPageToken;
  }
  t.deepEqual(Object.fromEntries(all.map((s) => [s.id, s.state])), {
    [draft.id]: ScheduleState.PUBLISHED,
    [coming.id]: ScheduleState.PUBLISHED,
    [closed.id]: ScheduleState.PUBLISHED,
    [cancelled.id]: ScheduleState.CANCELLED,
  });
  // Hand-made tokens whose start time JavaScript reads and PostgreSQL would refuse: the caller's mistake.
  for (const startsAt of ["-271821-04-20T00:00:00.000Z", "0000-01-01T00:00:00.000Z", "2030-01-01"]) {
    const pageToken = Buffer.from(
      JSON.stringify({ f: `admin-schedules:${concert.id}`, a: [startsAt, draft.id] }),
    ).toString("base64url");
    const error = await expectError(
      t,
      admin.listSchedules({ concertId: concert.id, pageToken }, ops),
      Code.InvalidArgument,
      "INVALID_FIELD",
    );
    t.deepEqual(fieldViolations(error), ["page_token"], startsAt);
  }
});

test("cancelling a schedule with sold seats refunds each through the ledger and publishes events", async (t) => {
  const admin = adminClient(app);
  const concert = await newConcert("cancel-concert");
  const { schedule } = await admin.createSchedule(
    {
      concertId: concert.id,
      startsAt: inDays(40),
      sections: [section("P", 2, 5, 7_000n)],
      requestId: "cancel-schedule",
    },
    ops,
  );
  const buyers = ["buyer-1", "buyer-2", "buyer-3"];
  const seats = await query<{ id: string }>(`select id from seat where schedule_id = ? order by seat_no limit 4`, [
    schedule!.id,
  ]);
  const wallet = app.grpc(WalletService);
  const booking = app.grpc(BookingService);
  for (const [i, userId] of buyers.entries()) {
    const token = await admitUser(app, concert.id, userId);
    await wallet.topUp({ userId, amount: { amountMinor: 10_000n }, idempotencyKey: `top-${userId}` });
    const { reservation } = await booking.reserveSeat(
      { scheduleId: schedule!.id, seatId: seats[i]!.id, userId, requestId: `hold-${userId}` },
      withToken(token),
    );
    // The first two pay; the third only holds.
    if (i < 2)
      await wallet.payReservation(
        { reservationId: reservation!.id, userId, idempotencyKey: `pay-${userId}` },
        withToken(token),
      );
  }
  const cancel = {
    scheduleId: schedule!.id,
    state: ScheduleState.CANCELLED,
    updateMask: { paths: ["state"] },
    requestId: "cancel-1",
  };
  const result = await admin.updateSchedule(cancel, ops);
  t.is(result.refundedSeats, 2n);
  t.is(result.schedule!.state, ScheduleState.CANCELLED);
  t.is(result.schedule!.soldSeats, 0n);
  for (const userId of buyers) {
    const { wallet: w } = await wallet.getBalance({ userId });
    t.is(w!.balance!.amountMinor, 10_000n, `${userId} has all their money back`);
  }
  const refunds = await query<{ n: string }>(
    `select count(*) as n from ledger_entry where kind = 'REFUND' and amount_minor = 7000`,
  );
  t.is(refunds[0]!.n, "2");
  const events = await query<{ event_type: string; n: string }>(
    `select event_type, count(*) as n from outbox
     where event_type = 'payment.refunded' or (event_type = 'schedule.cancelled' and aggregate_id = ?)
     group by event_type order by event_type`,
    [schedule!.id],
  );
  t.deepEqual(events, [
    { event_type: "payment.refunded", n: "2" },
    { event_type: "schedule.cancelled", n: "1" },
  ]);
  const live = await query<{ n: string }>(
    `select count(*) as n from reservation where schedule_id = ? and status in ('HELD', 'CONFIRMED')`,
    [schedule!.id],
  );
  t.is(live[0]!.n, "0");
  // Asking again changes nothing; leaving CANCELLED is refused.
  t.is((await admin.updateSchedule(cancel, ops)).refundedSeats, 0n);
  await expectError(
    t,
    admin.updateSchedule(
      { scheduleId: schedule!.id, state: ScheduleState.PUBLISHED, updateMask: { paths: ["state"] } },
      ops,
    ),
    Code.FailedPrecondition,
    "SCHEDULE_NOT_UPDATABLE",
  );
});

test("grpcurl creates a concert and a schedule with seats, as the README shows", async (t) => {
  const call = async (method: string, body: object) => {
    const result = await grpcurl([
      "-plaintext",
      "-H",
      `authorization: Bearer ${OPS_SECRET}`,
      "-d",
      JSON.stringify(body),
      app.grpcAddress,
      `concert.v1.AdminService/${method}`,
    ]);
    t.is(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as Record<string, Record<string, string>>;
  };
  const { concert } = await call("CreateConcert", {
    title: "Grpcurl Live",
    artist: "The Operators",
    venue: "Shell Hall",
    requestId: "grpcurl-concert",
  });
  const { schedule } = await call("CreateSchedule", {
    concertId: concert!.id,
    startsAt: "2030-07-01T18:30:00Z",
    saleOpensAt: "2030-06-01T10:00:00Z",
    sections: [
      { name: "FLOOR", grade: "S", rows: 20, seatsPerRow: 50, price: { amountMinor: "12000" } },
      { name: "BALCONY", grade: "B", rows: 10, seatsPerRow: 40, price: { amountMinor: "6000" } },
    ],
    requestId: "grpcurl-schedule",
  });
  t.is(schedule!.totalSeats, "1400");
  t.is(schedule!.state, "SCHEDULE_STATE_PUBLISHED");
  t.is(schedule!.saleOpensAt, "2030-06-01T10:00:00Z");
});
