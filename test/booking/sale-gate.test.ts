// The sale gate over the wire (real server on both ports, real PostgreSQL and Redis, a stepped
// clock): seats are held only while their schedule is PUBLISHED and inside its sale window, a
// cancelled schedule is never charged, and a cancel racing holds and payments leaves no live
// reservation and no unrefunded charge behind. Serial: the clock is shared by the whole file.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError } from "@connectrpc/connect";
import test from "ava";
import { AdminService, ScheduleState } from "../../gen/concert/v1/admin_pb.js";
import { BookingService, ReservationStatus } from "../../gen/concert/v1/booking_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { parseAdminTokens } from "../../src/admin/admin-tokens.js";
import { lockScheduleSale } from "../../src/booking/sale-gate.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import {
  admitUsers,
  balanceOf,
  ledgerOf,
  loadCatalog,
  reservationRow,
  seatRow,
  withToken,
  type Catalog,
} from "../helpers/booking.js";
import { steppedClock } from "../helpers/clock.js";
import { errorReason, expectError } from "../helpers/errors.js";
import { waitFor } from "../helpers/wait.js";

const ADMIN_SECRET = "sale-gate-secret-0123456789";
const admin = { metadata: { authorization: `Bearer ${ADMIN_SECRET}` } };
const HOUR = 3_600_000;
const FUNDS = 1_000_000n;
const RACE_PAYERS = 30;
const RACE_HOLDERS = 60;
/** Seats each payer holds before the race and pays during it; rounds of holds each holder may try. */
const PAYER_SEATS = 3;
const HOLDER_ROUNDS = 8;

const clock = steppedClock(Math.floor(Date.now() / 1000) * 1000);
let app: TestApp;
let concert: Catalog;
let tokens: Map<string, string>;
const users = ["ann", "ben", "cat", "dan", ...Array.from({ length: RACE_PAYERS + RACE_HOLDERS }, (_, i) => `r-${i}`)];

test.before(async () => {
  const problems: string[] = [];
  const adminTokens = parseAdminTokens(`ops:${ADMIN_SECRET}`, "", problems);
  app = await startTestApp(
    "sale_gate",
    { adminTokens, maxActiveUsers: 1000, admissionIntervalMs: 50, maxSeatsPerUser: 10 },
    { clock },
  );
  await seedCatalog(app.app.orm.em.fork(), { concerts: 1, schedules: 7, seats: 600 });
  concert = await loadCatalog(app.app.orm.em.fork());
  tokens = await admitUsers(app, concert.concertId, users);
  const wallet = app.grpc(WalletService);
  for (const userId of users)
    await wallet.topUp({ userId, amount: { amountMinor: FUNDS }, idempotencyKey: `fund-${userId}` });
});

test.after.always(async () => {
  await app?.stop();
});

const token = (userId: string) => withToken(tokens.get(userId));
const schedule = (i: number) => concert.schedules[i]!;
const query = <R>(sql: string, params: unknown[] = []) =>
  app.app.orm.em.fork().getConnection().execute<R[]>(sql, params);
const metadataOf = (error: ConnectError) => error.findDetails(ErrorInfoSchema)[0]?.metadata ?? {};

function reserve(userId: string, scheduleIndex: number, seatIndex: number, requestId = `${userId}-${seatIndex}`) {
  const { id: scheduleId, seatIds } = schedule(scheduleIndex);
  return app
    .grpc(BookingService)
    .reserveSeat({ scheduleId, seatId: seatIds[seatIndex]!, userId, requestId }, token(userId));
}

const pay = (userId: string, reservationId: string) =>
  app
    .grpc(WalletService)
    .payReservation({ reservationId, userId, idempotencyKey: `pay-${reservationId}` }, token(userId));

const cancelSchedule = (scheduleId: string) =>
  app
    .grpc(AdminService)
    .updateSchedule({ scheduleId, state: ScheduleState.CANCELLED, updateMask: { paths: ["state"] } }, admin);

test.serial(
  "a hold is refused before the sale opens and from its close on; a hold taken before the close may still be paid",
  async (t) => {
    const opensAt = new Date(clock().getTime() + HOUR);
    const closesAt = new Date(opensAt.getTime() + HOUR);
    await app.grpc(AdminService).updateSchedule(
      {
        scheduleId: schedule(0).id,
        saleOpensAt: timestampFromDate(opensAt),
        saleClosesAt: timestampFromDate(closesAt),
        updateMask: { paths: ["sale_opens_at", "sale_closes_at"] },
      },
      admin,
    );
    const early = await expectError(t, reserve("ann", 0, 0), Code.FailedPrecondition, "SALE_NOT_OPEN");
    t.is(metadataOf(early).sale_opens_at, opensAt.toISOString());
    clock.advance(HOUR - 1);
    await expectError(t, reserve("ann", 0, 0, "ann-0-b"), Code.FailedPrecondition, "SALE_NOT_OPEN");

    clock.advance(1); // the opening instant itself
    const first = await reserve("ann", 0, 0, "ann-0-c");
    t.is(first.reservation?.status, ReservationStatus.HELD);
    clock.advance(HOUR - 1); // the last millisecond of the sale
    const last = await reserve("ben", 0, 1);
    t.is(last.reservation?.status, ReservationStatus.HELD);

    clock.advance(1); // the closing instant
    const late = await expectError(t, reserve("cat", 0, 2), Code.FailedPrecondition, "SALE_CLOSED");
    t.is(metadataOf(late).sale_closes_at, closesAt.toISOString());
    const overConnect = app.connect(BookingService);
    await expectError(
      t,
      overConnect.reserveSeat(
        { scheduleId: schedule(0).id, seatId: schedule(0).seatIds[3]!, userId: "cat", requestId: "cat-3" },
        { headers: { "x-queue-token": tokens.get("cat")! } },
      ),
      Code.FailedPrecondition,
      "SALE_CLOSED",
    );
    // The window gates taking seats; a hold taken inside it is paid until the hold ends.
    const paid = await pay("ben", last.reservation!.id);
    t.is(paid.reservation?.status, ReservationStatus.CONFIRMED);
    t.is((await seatRow(app.app.orm, schedule(0).seatIds[2]!)).status, "AVAILABLE");
  },
);

test.serial("a schedule whose sale sets no close takes holds until its performance starts", async (t) => {
  const startsAt = new Date(clock().getTime() + HOUR);
  await query(`update schedule set start_time = ?, sale_opens_at = null, sale_closes_at = null where id = ?`, [
    startsAt,
    schedule(6).id,
  ]);
  clock.advance(HOUR - 1);
  t.is((await reserve("ann", 6, 0, "ann-6-0")).reservation?.status, ReservationStatus.HELD);
  clock.advance(1); // the performance starts
  const late = await expectError(t, reserve("ann", 6, 1, "ann-6-1"), Code.FailedPrecondition, "SALE_CLOSED");
  t.deepEqual(metadataOf(late), { schedule_id: schedule(6).id, sale_closes_at: startsAt.toISOString() });
});

test.serial("DRAFT and CANCELLED schedules refuse holds on both ports", async (t) => {
  await query(`update schedule set state = 'DRAFT' where id = ?`, [schedule(1).id]);
  const draft = await expectError(t, reserve("ann", 1, 0), Code.FailedPrecondition, "SCHEDULE_NOT_ON_SALE");
  t.deepEqual(metadataOf(draft), { schedule_id: schedule(1).id, state: "DRAFT" });

  await cancelSchedule(schedule(2).id);
  const cancelled = await expectError(t, reserve("ann", 2, 0), Code.FailedPrecondition, "SCHEDULE_NOT_ON_SALE");
  t.is(metadataOf(cancelled).state, "CANCELLED");
  await expectError(
    t,
    app
      .connect(BookingService)
      .reserveSeat(
        { scheduleId: schedule(2).id, seatId: schedule(2).seatIds[1]!, userId: "cat", requestId: "cat-c" },
        { headers: { "x-queue-token": tokens.get("cat")! } },
      ),
    Code.FailedPrecondition,
    "SCHEDULE_NOT_ON_SALE",
  );
  const seats = await query<{ n: string }>(
    `select count(*) as n from seat where schedule_id in (?, ?) and status <> 'AVAILABLE'`,
    [schedule(1).id, schedule(2).id],
  );
  t.is(seats[0]!.n, "0");
});

test.serial(
  "a hold on a schedule cancelled meanwhile is never charged; seat and ledger stay as they were",
  async (t) => {
    const { reservation } = await reserve("cat", 3, 0);
    const before = { balance: await balanceOf(app.app.orm, "cat"), ledger: await ledgerOf(app.app.orm, "cat") };
    // The cancel committed and its sweep has not reached this hold yet (or stopped half-way).
    await query(`update schedule set state = 'CANCELLED' where id = ?`, [schedule(3).id]);
    const refused = await expectError(t, pay("cat", reservation!.id), Code.FailedPrecondition, "SCHEDULE_NOT_ON_SALE");
    t.is(metadataOf(refused).state, "CANCELLED");
    t.is(await balanceOf(app.app.orm, "cat"), before.balance);
    t.deepEqual(await ledgerOf(app.app.orm, "cat"), before.ledger);
    t.is((await seatRow(app.app.orm, schedule(3).seatIds[0]!)).status, "HELD");
    t.is((await reservationRow(app.app.orm, reservation!.id)).status, "HELD");

    // Asking for the cancel again finishes the sweep; the hold is cancelled and its seat free.
    await cancelSchedule(schedule(3).id);
    await expectError(t, pay("cat", reservation!.id), Code.FailedPrecondition, "RESERVATION_NOT_PAYABLE");
    t.is((await seatRow(app.app.orm, schedule(3).seatIds[0]!)).status, "AVAILABLE");
    t.is(await balanceOf(app.app.orm, "cat"), before.balance);
  },
);

test.serial(
  "a hold and a payment that reach the schedule while its cancel is being decided wait for it and see it",
  async (t) => {
    const { reservation } = await reserve("dan", 4, 0);
    const balance = await balanceOf(app.app.orm, "dan");
    let decide!: () => void;
    const decided = new Promise<void>((resolve) => (decide = resolve));
    let cancelLocked!: () => void;
    const locked = new Promise<void>((resolve) => (cancelLocked = resolve));
    // The cancel's transaction as UpdateSchedule runs it, held open before its commit.
    const cancel = app.app.orm.em.fork().transactional(async (em) => {
      await lockScheduleSale(em, schedule(4).id);
      await em.execute(`update schedule set state = 'CANCELLED' where id = ?`, [schedule(4).id]);
      cancelLocked();
      await decided;
    });
    await locked;
    const hold = reserve("dan", 4, 1).then(
      () => "OK",
      (e: unknown) => errorReason(e),
    );
    const payment = pay("dan", reservation!.id).then(
      () => "OK",
      (e: unknown) => errorReason(e),
    );
    // Both wait on the schedule's sale lock: neither read the schedule before the cancel commits.
    const waiting = () =>
      query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'
         and query like '%pg_advisory_xact_lock_shared%'`,
      );
    await waitFor(async () => (await waiting())[0]!.n === 2, {
      message: () => "hold and payment waiting on the sale lock",
    });
    decide();
    await cancel;
    t.deepEqual([await hold, await payment], ["SCHEDULE_NOT_ON_SALE", "SCHEDULE_NOT_ON_SALE"]);
    t.is(await balanceOf(app.app.orm, "dan"), balance);
    t.is((await seatRow(app.app.orm, schedule(4).seatIds[1]!)).status, "AVAILABLE");
  },
);

test.serial(
  `${RACE_HOLDERS} holders and ${RACE_PAYERS} payers racing a cancel leave no live reservation and no unrefunded charge`,
  async (t) => {
    const race = schedule(5);
    const payers = users.filter((u) => u.startsWith("r-")).slice(0, RACE_PAYERS);
    const holders = users.filter((u) => u.startsWith("r-")).slice(RACE_PAYERS);
    const held = await Promise.all(
      payers.map(async (userId, i) => {
        const seats = Array.from({ length: PAYER_SEATS }, (_, k) => i * PAYER_SEATS + k);
        return Promise.all(seats.map(async (seat) => (await reserve(userId, 5, seat)).reservation!.id));
      }),
    );
    // The cancel starts once the first racers were answered, so it lands among the rest; every
    // racer goes on (paying its next hold, taking another seat) until it is refused.
    let answered = 0;
    let cancelStarted!: () => void;
    const startCancel = new Promise<void>((resolve) => (cancelStarted = resolve));
    const outcomes: string[] = [];
    const settle = async (call: Promise<unknown>) => {
      const outcome = await call.then(
        () => "OK",
        (e: unknown) => errorReason(e) ?? String(e),
      );
      outcomes.push(outcome);
      if (++answered === 10) cancelStarted();
      return outcome;
    };
    const payAll = async (userId: string, reservations: string[]) => {
      for (const id of reservations) if ((await settle(pay(userId, id))) !== "OK") return;
    };
    const holdOn = async (userId: string, i: number) => {
      const first = RACE_PAYERS * PAYER_SEATS + i * HOLDER_ROUNDS;
      for (let round = 0; round < HOLDER_ROUNDS; round++)
        if ((await settle(reserve(userId, 5, first + round))) !== "OK") return;
    };
    await Promise.all([
      ...payers.map((userId, i) => payAll(userId, held[i]!)),
      ...holders.map((userId, i) => holdOn(userId, i)),
      startCancel.then(() => cancelSchedule(race.id)),
    ]);
    const allowed = new Set(["OK", "SCHEDULE_NOT_ON_SALE", "RESERVATION_NOT_PAYABLE"]);
    t.deepEqual(
      outcomes.filter((o) => !allowed.has(o)),
      [],
    );
    const live = await query<{ n: string }>(
      `select count(*) as n from reservation where schedule_id = ? and status in ('HELD', 'CONFIRMED')`,
      [race.id],
    );
    t.is(live[0]!.n, "0", "no live reservation outlives the cancel");
    const seats = await query<{ n: string }>(
      `select count(*) as n from seat where schedule_id = ? and status <> 'AVAILABLE'`,
      [race.id],
    );
    t.is(seats[0]!.n, "0");
    // Every charge on the schedule was refunded: each racer has exactly what it was funded with.
    const unrefunded = await query<{ reservation_id: string }>(
      `select l.reservation_id from ledger_entry l join reservation r on r.id = l.reservation_id
     where r.schedule_id = ? group by l.reservation_id having sum(l.amount_minor) <> 0`,
      [race.id],
    );
    t.deepEqual(unrefunded, []);
    for (const userId of [...payers, ...holders]) t.is(await balanceOf(app.app.orm, userId), FUNDS, userId);
    t.log(
      `outcomes: ${JSON.stringify(Object.fromEntries([...new Set(outcomes)].map((o) => [o, outcomes.filter((x) => x === o).length])))}`,
    );
  },
);
