// Seat holds at the domain level (in-process, real PostgreSQL): races, limits, idempotency,
// expiry (lazy and swept) and cancellation.

import test from "ava";
import { expireOverdueHolds } from "../../src/booking/hold-sweeper.js";
import { cancelReservation, getReservation, reserveSeat, type HoldPolicy } from "../../src/booking/seat-hold.js";
import {
  endHoldNow,
  openBookingDb,
  outcome,
  reservationRow,
  seatRow,
  tally,
  type BookingDb,
} from "../helpers/booking.js";
import { steppedClock } from "../helpers/clock.js";

let db: BookingDb;
const policy: HoldPolicy = { holdSeconds: 300, maxSeatsPerUser: 4 };
/** A step that ends a hold of `policy`: time goes on by steps here, never by sleeping. */
const PAST_THE_HOLD_MS = (policy.holdSeconds + 1) * 1000;
let nextSeat = 0;
/** A seat no other test touches. */
const freshSeat = () => db.catalog.schedules[0]!.seatIds[nextSeat++]!;
const scheduleId = () => db.catalog.schedules[0]!.id;

test.before(async () => {
  db = await openBookingDb("seathold", 300);
});

test.after.always(async () => {
  await db?.stop();
});

test("200 concurrent holds on one seat: exactly one wins, the rest are SEAT_UNAVAILABLE", async (t) => {
  const seatId = freshSeat();
  const outcomes = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      outcome(reserveSeat(db.orm, { scheduleId: scheduleId(), seatId, userId: `racer-${i}`, requestId: "r1" }, policy)),
    ),
  );
  t.deepEqual(tally(outcomes), { OK: 1, SEAT_UNAVAILABLE: 199 });
  const seat = await seatRow(db.orm, seatId);
  t.is(seat.status, "HELD");
  const [live] = await db.orm.em
    .fork()
    .getConnection()
    .execute<{ n: number }[]>("select count(*)::int as n from reservation where seat_id = ? and status = 'HELD'", [
      seatId,
    ]);
  t.is(live?.n, 1);
});

test("a retry with the same request id returns the first hold; another seat with it is IDEMPOTENCY_KEY_REUSED", async (t) => {
  const seatId = freshSeat();
  const input = { scheduleId: scheduleId(), seatId, userId: "idem", requestId: "req-1" };
  const first = await reserveSeat(db.orm, input, policy);
  const again = await reserveSeat(db.orm, input, policy);
  t.is(again.id, first.id);
  t.deepEqual(again.expireTime, first.expireTime);
  const parallel = await Promise.all(Array.from({ length: 10 }, () => reserveSeat(db.orm, input, policy)));
  t.deepEqual(new Set(parallel.map((r) => r.id)), new Set([first.id]));
  t.is(await outcome(reserveSeat(db.orm, { ...input, seatId: freshSeat() }, policy)), "IDEMPOTENCY_KEY_REUSED");
});

test("one user racing for ten seats gets exactly MAX_SEATS_PER_USER of them", async (t) => {
  const seats = Array.from({ length: 10 }, freshSeat);
  const outcomes = await Promise.all(
    seats.map((seatId, i) =>
      outcome(
        reserveSeat(
          db.orm,
          { scheduleId: scheduleId(), seatId, userId: "greedy", requestId: `g-${i}` },
          { ...policy, maxSeatsPerUser: 3 },
        ),
      ),
    ),
  );
  t.deepEqual(tally(outcomes), { OK: 3, SEAT_LIMIT_REACHED: 7 });
  // The limit is per schedule: the other schedule is still open to this user.
  const other = db.catalog.schedules[1]!;
  await t.notThrowsAsync(
    reserveSeat(
      db.orm,
      { scheduleId: other.id, seatId: other.seatIds[0]!, userId: "greedy", requestId: "g-other" },
      { ...policy, maxSeatsPerUser: 3 },
    ),
  );
});

test("an unknown seat, or a seat of another schedule, is SEAT_NOT_FOUND", async (t) => {
  const base = { scheduleId: scheduleId(), userId: "lost", requestId: "x" };
  t.is(
    await outcome(reserveSeat(db.orm, { ...base, seatId: "00000000-0000-0000-0000-000000000000" }, policy)),
    "SEAT_NOT_FOUND",
  );
  const otherSchedulesSeat = db.catalog.schedules[1]!.seatIds[10]!;
  t.is(await outcome(reserveSeat(db.orm, { ...base, seatId: otherSchedulesSeat }, policy)), "SEAT_NOT_FOUND");
  t.is((await seatRow(db.orm, otherSchedulesSeat)).status, "AVAILABLE");
});

test("an expired hold reads as EXPIRED and its seat can be held again before any sweep", async (t) => {
  const seatId = freshSeat();
  const clock = steppedClock();
  const first = await reserveSeat(
    db.orm,
    { scheduleId: scheduleId(), seatId, userId: "slow", requestId: "s1" },
    policy,
    clock,
  );
  t.is(
    await outcome(
      reserveSeat(db.orm, { scheduleId: scheduleId(), seatId, userId: "quick", requestId: "q1" }, policy, clock),
    ),
    "SEAT_UNAVAILABLE",
  );
  clock.advance(PAST_THE_HOLD_MS);
  t.is((await getReservation(db.orm.em.fork(), first.id, "slow", clock)).status, "EXPIRED");
  const second = await reserveSeat(
    db.orm,
    { scheduleId: scheduleId(), seatId, userId: "quick", requestId: "q2" },
    policy,
    clock,
  );
  t.is(second.status, "HELD");
  t.is((await reservationRow(db.orm, first.id)).status, "EXPIRED");
  t.is((await seatRow(db.orm, seatId)).status, "HELD");
});

// Serial (ava runs serial tests first), so no other test's hold ends into this count: the sweeps
// run at a time when every hold made so far has ended.
test.serial("the sweeper frees expired holds once, even with several sweepers at the same time", async (t) => {
  const seats = Array.from({ length: 12 }, freshSeat);
  const clock = steppedClock();
  const held = await Promise.all(
    seats.map((seatId, i) =>
      reserveSeat(db.orm, { scheduleId: scheduleId(), seatId, userId: `sweep-${i}`, requestId: "h" }, policy, clock),
    ),
  );
  clock.advance(PAST_THE_HOLD_MS);
  const sweeps = await Promise.all(Array.from({ length: 4 }, () => expireOverdueHolds(db.orm, 5, clock())));
  let expired = sweeps.reduce((sum, s) => sum + s.expired, 0);
  for (let round = 0; round < 10 && expired < held.length; round++)
    expired += (await expireOverdueHolds(db.orm, 5, clock())).expired;
  t.is(expired, held.length);
  t.deepEqual(await expireOverdueHolds(db.orm, 5, clock()), { expired: 0, more: false });
  for (const reservation of held) {
    t.is((await reservationRow(db.orm, reservation.id)).status, "EXPIRED");
    t.like(await seatRow(db.orm, reservation.seatId), { status: "AVAILABLE", heldUntil: null });
  }
});

test("cancel frees the seat at once; a retried cancel changes nothing; only the owner may cancel", async (t) => {
  const seatId = freshSeat();
  const held = await reserveSeat(
    db.orm,
    { scheduleId: scheduleId(), seatId, userId: "owner", requestId: "c1" },
    policy,
  );
  t.is(
    await outcome(cancelReservation(db.orm, { reservationId: held.id, userId: "intruder" })),
    "RESERVATION_NOT_FOUND",
  );
  const cancelled = await cancelReservation(db.orm, { reservationId: held.id, userId: "owner" });
  t.is(cancelled.status, "CANCELLED");
  t.like(await seatRow(db.orm, seatId), { status: "AVAILABLE", heldUntil: null });
  t.is((await cancelReservation(db.orm, { reservationId: held.id, userId: "owner" })).status, "CANCELLED");
  t.is(
    (await reserveSeat(db.orm, { scheduleId: scheduleId(), seatId, userId: "next", requestId: "n1" }, policy)).status,
    "HELD",
  );
  t.is(await outcome(getReservation(db.orm.em.fork(), held.id, "intruder")), "RESERVATION_NOT_FOUND");
});

test("cancelling an expired hold reports EXPIRED and frees the seat", async (t) => {
  const seatId = freshSeat();
  const held = await reserveSeat(db.orm, { scheduleId: scheduleId(), seatId, userId: "late", requestId: "l1" }, policy);
  // cancelReservation reads the real clock: the hold's end moves into the past instead.
  await endHoldNow(db.orm, held.id);
  t.is((await cancelReservation(db.orm, { reservationId: held.id, userId: "late" })).status, "EXPIRED");
  t.is((await reservationRow(db.orm, held.id)).status, "EXPIRED");
  t.is((await seatRow(db.orm, seatId)).status, "AVAILABLE");
});
