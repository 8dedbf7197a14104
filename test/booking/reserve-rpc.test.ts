// Seat holds over the wire (real server, queue-token guard, real PostgreSQL and Redis): the
// signature race, the happy path on every transport, and each error path's code and reason.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService, ReservationStatus, SeatStatus } from "../../gen/concert/v1/booking_pb.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { admitUsers, loadCatalog, withToken, type Catalog } from "../helpers/booking.js";
import { errorReason, expectError, fieldViolations } from "../helpers/errors.js";

let app: TestApp;
let concert: Catalog;
let otherConcert: Catalog;
let tokens: Map<string, string>;
let nextSeat = 0;
const RACERS = 200;
const racers = Array.from({ length: RACERS }, (_, i) => `racer-${i}`);
const freshSeat = () => concert.schedules[0]!.seatIds[nextSeat++]!;
const token = (userId: string) => withToken(tokens.get(userId));

test.before(async () => {
  app = await startTestApp("reserve_rpc", { maxActiveUsers: 1000, admissionIntervalMs: 50, maxSeatsPerUser: 2 });
  await seedCatalog(app.app.orm.em.fork(), { concerts: 2, schedules: 2, seats: 60 });
  const [a, b] = await app.app.orm.em
    .fork()
    .getConnection()
    .execute<{ id: string }[]>("select id from concert order by id");
  concert = await loadCatalog(app.app.orm.em.fork(), a!.id);
  otherConcert = await loadCatalog(app.app.orm.em.fork(), b!.id);
  tokens = await admitUsers(app, concert.concertId, [...racers, "alice", "bob", "carol"]);
  for (const [userId, t] of await admitUsers(app, otherConcert.concertId, ["alice"])) tokens.set(`${userId}@other`, t);
});

test.after.always(async () => {
  await app?.stop();
});

test(`${RACERS} concurrent ReserveSeat calls on one seat: one HELD, the rest SEAT_UNAVAILABLE, no INTERNAL`, async (t) => {
  const client = app.grpc(BookingService);
  const seatId = freshSeat();
  const scheduleId = concert.schedules[0]!.id;
  const results = await Promise.allSettled(
    racers.map((userId) => client.reserveSeat({ scheduleId, seatId, userId, requestId: "race" }, token(userId))),
  );
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  t.is(won.length, 1);
  t.is(won[0]!.value.reservation?.status, ReservationStatus.HELD);
  t.deepEqual(
    new Set(lost.map((e) => `${Code[e.code]} ${errorReason(e)}`)),
    new Set(["FailedPrecondition SEAT_UNAVAILABLE"]),
  );
  const { seats } = await client.listSeats({ scheduleId, pageSize: 1 }, token("alice"));
  t.is(seats[0]!.status, SeatStatus.HELD);
});

for (const transport of ["grpc", "connect"] as const) {
  test(`${transport}: hold, read and cancel a seat; the seat is free again at once`, async (t) => {
    const userId = transport === "grpc" ? "alice" : "bob";
    const headers = { headers: { "x-queue-token": tokens.get(userId)! } };
    const call = transport === "grpc" ? app.grpc(BookingService) : app.connect(BookingService);
    const options = transport === "grpc" ? token(userId) : headers;
    const scheduleId = concert.schedules[1]!.id;
    const seatId = concert.schedules[1]!.seatIds[transport === "grpc" ? 0 : 1]!;
    const before = Date.now();
    const { reservation } = await call.reserveSeat(
      { scheduleId, seatId, userId, requestId: `hold-${transport}` },
      options,
    );
    const after = Date.now();
    t.like(reservation, { scheduleId, seatId, userId, status: ReservationStatus.HELD });
    t.is(reservation!.price?.currencyCode, "JPY");
    // The server read its clock while the call ran: the end is 300 s after a time between the two
    // readings here, however long the call took on a busy machine.
    const endMs = timestampDate(reservation!.expireTime!).getTime();
    t.true(
      endMs >= before + 300_000 && endMs <= after + 300_000,
      `hold ends ${endMs - before} ms after the call began`,
    );
    const got = await call.getReservation({ reservationId: reservation!.id }, options);
    t.is(got.reservation?.status, ReservationStatus.HELD);
    const cancelled = await call.cancelReservation({ reservationId: reservation!.id, userId }, options);
    t.is(cancelled.reservation?.status, ReservationStatus.CANCELLED);
    // A retry of the hold after the cancel answers what the first call answered; GetReservation tells the rest.
    const retried = await call.reserveSeat({ scheduleId, seatId, userId, requestId: `hold-${transport}` }, options);
    t.deepEqual(retried.reservation, reservation);
    t.is(
      (await call.getReservation({ reservationId: reservation!.id }, options)).reservation?.status,
      ReservationStatus.CANCELLED,
    );
    const { seats } = await call.listSeats({ scheduleId, pageSize: 2 }, options);
    t.is(seats.find((s) => s.id === seatId)?.status, SeatStatus.AVAILABLE);
  });
}

test("queue-token errors: missing, another user's, another concert's", async (t) => {
  const client = app.grpc(BookingService);
  const request = { scheduleId: concert.schedules[0]!.id, seatId: freshSeat(), userId: "carol", requestId: "tok" };
  await expectError(t, client.reserveSeat(request), Code.Unauthenticated, "QUEUE_TOKEN_INVALID");
  await expectError(t, client.reserveSeat(request, token("alice")), Code.PermissionDenied, "QUEUE_TOKEN_MISMATCH");
  await expectError(
    t,
    client.reserveSeat({ ...request, userId: "alice" }, token("alice@other")),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
  const { reservation } = await client.reserveSeat(request, token("carol"));
  await expectError(
    t,
    client.getReservation({ reservationId: reservation!.id }, token("alice")),
    Code.NotFound,
    "RESERVATION_NOT_FOUND",
  );
  await expectError(
    t,
    client.cancelReservation({ reservationId: reservation!.id, userId: "alice" }, token("alice")),
    Code.NotFound,
    "RESERVATION_NOT_FOUND",
  );
  await expectError(
    t,
    client.cancelReservation({ reservationId: reservation!.id, userId: "carol" }, token("alice")),
    Code.PermissionDenied,
    "QUEUE_TOKEN_MISMATCH",
  );
});

test("replays are bound to the token: another user's token, or the same user's for another concert, gets nothing back", async (t) => {
  const client = app.grpc(BookingService);
  const request = { scheduleId: concert.schedules[1]!.id, seatId: concert.schedules[1]!.seatIds[59]!, userId: "alice" };
  const held = { ...request, requestId: "bound-hold" };
  const { reservation } = await client.reserveSeat(held, token("alice"));
  const elsewhere = token("alice@other");
  const mismatch = async (call: Promise<unknown>) => {
    const error = await expectError(t, call, Code.PermissionDenied, "QUEUE_TOKEN_MISMATCH");
    t.false(error.message.includes(reservation!.id));
  };
  for (const other of [elsewhere, token("bob")]) {
    await mismatch(client.reserveSeat(held, other));
    await mismatch(client.cancelReservation({ reservationId: reservation!.id, userId: "alice" }, other));
  }
  await mismatch(client.getReservation({ reservationId: reservation!.id }, elsewhere));
  // Cancelled, a repeated cancel is a replay that changes nothing; still not for the other token.
  await client.cancelReservation({ reservationId: reservation!.id, userId: "alice" }, token("alice"));
  for (const other of [elsewhere, token("bob")]) {
    await mismatch(client.cancelReservation({ reservationId: reservation!.id, userId: "alice" }, other));
    await mismatch(client.reserveSeat(held, other));
  }
});

test("request errors: invalid fields, unknown ids, seat limit, reused request id", async (t) => {
  const client = app.grpc(BookingService);
  const scheduleId = concert.schedules[0]!.id;
  const invalid = await expectError(
    t,
    client.reserveSeat({ scheduleId: "x", seatId: "", userId: "carol", requestId: "" }, token("carol")),
    Code.InvalidArgument,
    "INVALID_FIELD",
  );
  t.deepEqual(fieldViolations(invalid), ["schedule_id", "seat_id", "request_id"]);
  const unknown = "00000000-0000-0000-0000-000000000000";
  await expectError(
    t,
    client.reserveSeat({ scheduleId: unknown, seatId: freshSeat(), userId: "bob", requestId: "u1" }, token("bob")),
    Code.NotFound,
    "SCHEDULE_NOT_FOUND",
  );
  await expectError(
    t,
    client.reserveSeat({ scheduleId, seatId: unknown, userId: "bob", requestId: "u2" }, token("bob")),
    Code.NotFound,
    "SEAT_NOT_FOUND",
  );
  const otherSchedulesSeat = concert.schedules[1]!.seatIds[30]!;
  await expectError(
    t,
    client.reserveSeat({ scheduleId, seatId: otherSchedulesSeat, userId: "bob", requestId: "u3" }, token("bob")),
    Code.NotFound,
    "SEAT_NOT_FOUND",
  );
  await expectError(
    t,
    client.getReservation({ reservationId: unknown }, token("bob")),
    Code.NotFound,
    "RESERVATION_NOT_FOUND",
  );

  const first = await client.reserveSeat(
    { scheduleId, seatId: freshSeat(), userId: "bob", requestId: "lim-1" },
    token("bob"),
  );
  const replay = await client.reserveSeat(
    { scheduleId, seatId: first.reservation!.seatId, userId: "bob", requestId: "lim-1" },
    token("bob"),
  );
  t.deepEqual(replay.reservation, first.reservation);
  await expectError(
    t,
    client.reserveSeat({ scheduleId, seatId: freshSeat(), userId: "bob", requestId: "lim-1" }, token("bob")),
    Code.InvalidArgument,
    "IDEMPOTENCY_KEY_REUSED",
  );
  await client.reserveSeat({ scheduleId, seatId: freshSeat(), userId: "bob", requestId: "lim-2" }, token("bob"));
  await expectError(
    t,
    client.reserveSeat({ scheduleId, seatId: freshSeat(), userId: "bob", requestId: "lim-3" }, token("bob")),
    Code.FailedPrecondition,
    "SEAT_LIMIT_REACHED",
  );
});
