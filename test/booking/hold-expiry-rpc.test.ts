// Hold expiry over the wire: the seat is reservable again once the hold ends, the sweeper fixes
// the rows, and an expired hold cannot be paid. The server's clock is real, so each test ends its
// hold by moving the end into the past (endHoldNow) instead of sleeping past a short hold, which a
// busy machine may also end before the test's next call. (Lazy expiry without any sweeper, on a
// stepped clock, is covered in seat-hold.test.ts.)

import { Code } from "@connectrpc/connect";
import test from "ava";
import { BookingService, ReservationStatus, SeatStatus } from "../../gen/concert/v1/booking_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import {
  admitUsers,
  balanceOf,
  endHoldNow,
  ledgerOf,
  loadCatalog,
  reservationRow,
  seatRow,
  withToken,
  type Catalog,
} from "../helpers/booking.js";
import { expectError } from "../helpers/errors.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;
let concert: Catalog;
let tokens: Map<string, string>;
let nextSeat = 0;

test.before(async () => {
  app = await startTestApp("hold_expiry", {
    holdSweepIntervalMs: 200,
    maxActiveUsers: 100,
    admissionIntervalMs: 50,
  });
  await seedSmallCatalog(app, 20);
  concert = await loadCatalog(app.app.orm.em.fork());
  tokens = await admitUsers(app, concert.concertId, ["alice", "bob", "carol", "dave"]);
});

test.after.always(async () => {
  await app?.stop();
});

const booking = () => app.grpc(BookingService);
const scheduleId = () => concert.schedules[0]!.id;

async function hold(userId: string) {
  const seatId = concert.schedules[0]!.seatIds[nextSeat++]!;
  const { reservation } = await booking().reserveSeat(
    { scheduleId: scheduleId(), seatId, userId, requestId: `h-${seatId}` },
    withToken(tokens.get(userId)),
  );
  return reservation!;
}

test("after the hold ends the reservation reads EXPIRED and another user can hold the seat", async (t) => {
  const first = await hold("alice");
  await expectError(
    t,
    booking().reserveSeat(
      { scheduleId: scheduleId(), seatId: first.seatId, userId: "bob", requestId: "early" },
      withToken(tokens.get("bob")),
    ),
    Code.FailedPrecondition,
    "SEAT_UNAVAILABLE",
  );
  await endHoldNow(app.app.orm, first.id);
  const { reservation } = await booking().getReservation({ reservationId: first.id }, withToken(tokens.get("alice")));
  t.is(reservation?.status, ReservationStatus.EXPIRED);
  const second = await booking().reserveSeat(
    { scheduleId: scheduleId(), seatId: first.seatId, userId: "bob", requestId: "late" },
    withToken(tokens.get("bob")),
  );
  t.is(second.reservation?.status, ReservationStatus.HELD);
});

test("the sweeper marks expired holds EXPIRED and their seats AVAILABLE in the tables", async (t) => {
  const held = await hold("carol");
  await endHoldNow(app.app.orm, held.id);
  // The sweeper runs every 200 ms; the bound leaves room for a machine busy with other test files.
  await waitFor(async () => (await reservationRow(app.app.orm, held.id)).status === "EXPIRED", { timeoutMs: 30_000 });
  t.like(await seatRow(app.app.orm, held.seatId), { status: "AVAILABLE", heldUntil: null });
  const { seats } = await booking().listSeats({ scheduleId: scheduleId() }, withToken(tokens.get("carol")));
  t.is(seats.find((s) => s.id === held.seatId)?.status, SeatStatus.AVAILABLE);
});

test("paying an expired hold is RESERVATION_EXPIRED and charges nothing", async (t) => {
  await app.grpc(WalletService).topUp({ userId: "dave", amount: { amountMinor: 50_000n }, idempotencyKey: "t1" });
  const held = await hold("dave");
  await endHoldNow(app.app.orm, held.id);
  await expectError(
    t,
    app
      .grpc(WalletService)
      .payReservation(
        { reservationId: held.id, userId: "dave", idempotencyKey: "late" },
        withToken(tokens.get("dave")),
      ),
    Code.FailedPrecondition,
    "RESERVATION_EXPIRED",
  );
  t.is(await balanceOf(app.app.orm, "dave"), 50_000n);
  t.deepEqual(await ledgerOf(app.app.orm, "dave"), { sum: 50_000n, rows: 1 });
});
