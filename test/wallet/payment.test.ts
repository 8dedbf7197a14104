// Paying holds and refunding them at the domain level (in-process, real PostgreSQL): one
// transaction for payment, ledger, reservation, seat and outbox; idempotency; nothing charged on
// any refusal; money conserved under concurrency.

import type { EntityManager } from "@mikro-orm/postgresql";
import test from "ava";
import { lockSeat } from "../../src/booking/reservation-rows.js";
import { cancelReservation, reserveSeat, type HoldPolicy } from "../../src/booking/seat-hold.js";
import { Payment } from "../../src/wallet/payment.entity.js";
import { PAYMENT_COMPLETED } from "../../src/wallet/payment-rows.js";
import { PAYMENT_REFUNDED, refundPayment } from "../../src/wallet/payment-refund.js";
import { payReservation } from "../../src/wallet/reservation-payment.js";
import {
  balanceOf,
  fund,
  ledgerOf,
  openBookingDb,
  outboxRows,
  outcome,
  reservationRow,
  seatRow,
  tally,
  type BookingDb,
} from "../helpers/booking.js";
import { steppedClock, type SteppedClock } from "../helpers/clock.js";
import { waitForLockWaiters } from "../helpers/database.js";
import { waitFor } from "../helpers/wait.js";

let db: BookingDb;
const policy: HoldPolicy = { holdSeconds: 300, maxSeatsPerUser: 100 };
let nextSeat = 0;

test.before(async () => {
  db = await openBookingDb("payment", 400);
});

test.after.always(async () => {
  await db?.stop();
});

async function hold(userId: string, holdPolicy = policy, clock?: SteppedClock) {
  const schedule = db.catalog.schedules[0]!;
  const seatId = schedule.seatIds[nextSeat++]!;
  return reserveSeat(
    db.orm,
    { scheduleId: schedule.id, seatId, userId, requestId: `hold-${seatId}` },
    holdPolicy,
    clock,
  );
}

/** A step that ends a hold of `policy`: time goes on by steps here, never by sleeping. */
const PAST_THE_HOLD_MS = (policy.holdSeconds + 1) * 1000;

/** Locks the seat in the caller's transaction, as a payment would; returns the session's pid, for waitForLockWaiters. */
async function lockSeatFor(em: EntityManager, seatId: string): Promise<number> {
  await lockSeat(em, seatId);
  const [row] = await em.execute<{ pid: number }[]>("select pg_backend_pid() as pid");
  return row!.pid;
}

test("a payment confirms the hold, sells the seat, debits the wallet and records one event, together", async (t) => {
  await fund(db.orm, "payer", 50_000n);
  const held = await hold("payer");
  const result = await payReservation(db.orm, { reservationId: held.id, userId: "payer", idempotencyKey: "pay-1" });
  t.false(result.replayed);
  t.is(result.payment.amountMinor, held.priceMinor);
  t.is(result.reservation.status, "CONFIRMED");
  t.is(result.wallet.balanceMinor, 50_000n - held.priceMinor);
  t.is(await balanceOf(db.orm, "payer"), 50_000n - held.priceMinor);
  t.deepEqual(await ledgerOf(db.orm, "payer"), { sum: 50_000n - held.priceMinor, rows: 2 });
  t.like(await reservationRow(db.orm, held.id), { status: "CONFIRMED" });
  t.like(await seatRow(db.orm, held.seatId), { status: "RESERVED", heldUntil: null });
  const events = await outboxRows(db.orm, held.id);
  t.is(events.length, 1);
  t.like(events[0], { eventType: PAYMENT_COMPLETED, aggregateType: "reservation", publishedAt: null });
  t.like(events[0]!.payload, {
    payment_id: result.payment.id,
    amount_minor: held.priceMinor.toString(),
    user_id: "payer",
  });
  t.deepEqual(result.heldScheduleIds, []);
});

test("a payment reports the schedules in which the payer still holds unexpired seats", async (t) => {
  await fund(db.orm, "two-seats", 50_000n);
  const first = await hold("two-seats");
  const second = await hold("two-seats");
  const paidFirst = await payReservation(db.orm, {
    reservationId: first.id,
    userId: "two-seats",
    idempotencyKey: "two-1",
  });
  t.deepEqual(paidFirst.heldScheduleIds, [second.scheduleId]);
  const paidSecond = await payReservation(db.orm, {
    reservationId: second.id,
    userId: "two-seats",
    idempotencyKey: "two-2",
  });
  t.deepEqual(paidSecond.heldScheduleIds, []);
  // A replay did no work and reads nothing: the caller looks the holds up itself.
  const replayed = await payReservation(db.orm, {
    reservationId: second.id,
    userId: "two-seats",
    idempotencyKey: "two-2",
  });
  t.true(replayed.replayed);
  t.is(replayed.heldScheduleIds, undefined);
});

test("two payments of one hold with different keys: one charges, the other is RESERVATION_NOT_PAYABLE", async (t) => {
  for (let round = 0; round < 5; round++) {
    const held = await hold("racer");
    // Exactly the price: the losers, once the seat lock lets them on, find the wallet empty, and
    // must still be told the reservation is paid, not that the balance is short.
    await fund(db.orm, "racer", held.priceMinor);
    const outcomes = await Promise.all(
      ["a", "b", "c", "d"].map((key) =>
        outcome(
          payReservation(db.orm, { reservationId: held.id, userId: "racer", idempotencyKey: `race-${round}-${key}` }),
        ),
      ),
    );
    t.deepEqual(tally(outcomes), { OK: 1, RESERVATION_NOT_PAYABLE: 3 });
    t.is((await outboxRows(db.orm, held.id)).length, 1);
  }
  t.is(await balanceOf(db.orm, "racer"), 0n);
  t.deepEqual(await ledgerOf(db.orm, "racer"), { sum: 0n, rows: 10 });
});

test("a double-submitted payment charges once and both calls see the same payment", async (t) => {
  await fund(db.orm, "double", 50_000n);
  const held = await hold("double");
  const input = { reservationId: held.id, userId: "double", idempotencyKey: "dbl" };
  const results = await Promise.all(Array.from({ length: 10 }, () => payReservation(db.orm, input)));
  t.is(new Set(results.map((r) => r.payment.id)).size, 1);
  t.is(results.filter((r) => !r.replayed).length, 1);
  t.is(await balanceOf(db.orm, "double"), 50_000n - held.priceMinor);
  t.is((await outboxRows(db.orm, held.id)).length, 1);
  const other = await hold("double");
  // The other hold is payable, so the reuse shows only at the payment's unique index: rolled back, nothing charged.
  t.is(await outcome(payReservation(db.orm, { ...input, reservationId: other.id })), "IDEMPOTENCY_KEY_REUSED");
  t.like(await seatRow(db.orm, other.seatId), { status: "HELD" });
  t.is(await outcome(payReservation(db.orm, { ...input, idempotencyKey: "dbl-2" })), "RESERVATION_NOT_PAYABLE");
  t.is(await balanceOf(db.orm, "double"), 50_000n - held.priceMinor);
});

test("paying an expired hold fails with RESERVATION_EXPIRED and charges nothing", async (t) => {
  await fund(db.orm, "tardy", 50_000n);
  const clock = steppedClock();
  const held = await hold("tardy", policy, clock);
  clock.advance(PAST_THE_HOLD_MS);
  t.is(
    await outcome(
      payReservation(db.orm, { reservationId: held.id, userId: "tardy", idempotencyKey: "late" }, undefined, clock),
    ),
    "RESERVATION_EXPIRED",
  );
  t.is(await balanceOf(db.orm, "tardy"), 50_000n);
  t.deepEqual(await ledgerOf(db.orm, "tardy"), { sum: 50_000n, rows: 1 });
  t.is((await outboxRows(db.orm, held.id)).length, 0);
});

test("a hold cancelled while the payment waits for the seat lock is not paid, and none of the payment's rows remain", async (t) => {
  await fund(db.orm, "waiter", 50_000n);
  const held = await hold("waiter");
  // A cancel holds the seat lock while the payment, which read the reservation as payable, waits
  // for it; then the payment's one statement confirms nothing. Its payment, ledger and outbox
  // inserts ran in that same statement and must be rolled back with it.
  let paying: Promise<string> | undefined;
  await db.orm.em.fork().transactional(async (em) => {
    const pid = await lockSeatFor(em, held.seatId);
    paying = outcome(payReservation(db.orm, { reservationId: held.id, userId: "waiter", idempotencyKey: "slow" }));
    await waitForLockWaiters(db.url, pid, 1);
    await em.execute("update reservation set status = 'CANCELLED', cancelled_at = now() where id = ?", [held.id]);
    await em.execute("update seat set status = 'AVAILABLE', held_until = null where id = ?", [held.seatId]);
  });
  t.is(await paying, "RESERVATION_NOT_PAYABLE");
  t.is(await balanceOf(db.orm, "waiter"), 50_000n);
  t.deepEqual(await ledgerOf(db.orm, "waiter"), { sum: 50_000n, rows: 1 });
  t.is(await db.orm.em.fork().count(Payment, { reservationId: held.id }), 0);
  t.is((await outboxRows(db.orm, held.id)).length, 0);
  t.like(await reservationRow(db.orm, held.id), { status: "CANCELLED" });
  t.is((await seatRow(db.orm, held.seatId)).status, "AVAILABLE");
});

test("a payment that waits for the seat lock past the hold's end still confirms: the hold was unexpired when its transaction began", async (t) => {
  await fund(db.orm, "late-lock", 50_000n);
  const clock = steppedClock();
  const held = await hold("late-lock", policy, clock);
  let paying: Promise<string> | undefined;
  await db.orm.em.fork().transactional(async (em) => {
    const pid = await lockSeatFor(em, held.seatId);
    paying = outcome(
      payReservation(
        db.orm,
        { reservationId: held.id, userId: "late-lock", idempotencyKey: "late-lock" },
        undefined,
        clock,
      ),
    );
    // Waiting for the seat lock, it has read the time; the hold ends while it waits.
    await waitForLockWaiters(db.url, pid, 1);
    clock.advance(PAST_THE_HOLD_MS);
  });
  t.is(await paying, "OK");
  t.like(await reservationRow(db.orm, held.id), { status: "CONFIRMED" });
  t.is((await seatRow(db.orm, held.seatId)).status, "RESERVED");
});

test("a retry with the same key after the hold's end replays the first attempt, which began before it and waited for the seat lock", async (t) => {
  await fund(db.orm, "retrier", 50_000n);
  const clock = steppedClock();
  const held = await hold("retrier", policy, clock);
  const request = { reservationId: held.id, userId: "retrier", idempotencyKey: "retry-me" };
  let first: Promise<Awaited<ReturnType<typeof payReservation>>> | undefined;
  let retry: Promise<Awaited<ReturnType<typeof payReservation>>> | undefined;
  await db.orm.em.fork().transactional(async (em) => {
    const pid = await lockSeatFor(em, held.seatId);
    first = payReservation(db.orm, request, undefined, clock); // begins before the hold's end, then waits for the lock
    await waitForLockWaiters(db.url, pid, 1);
    clock.advance(PAST_THE_HOLD_MS);
    retry = payReservation(db.orm, request, undefined, clock); // the client's retry, after the end: it must not say EXPIRED
    // The retry expires the hold under the seat lock, so it queues behind the first attempt.
    await waitForLockWaiters(db.url, pid, 2);
  });
  const [a, b] = await Promise.all([first!, retry!]);
  t.false(a.replayed);
  t.true(b.replayed);
  t.is(b.payment.id, a.payment.id);
  t.is(await balanceOf(db.orm, "retrier"), 50_000n - held.priceMinor);
  t.like(await reservationRow(db.orm, held.id), { status: "CONFIRMED" });
});

test("a hold found over by a retry is expired for good: the first attempt, not yet at the seat lock, fails too", async (t) => {
  await fund(db.orm, "slowpoke", 50_000n);
  const clock = steppedClock();
  const held = await hold("slowpoke", policy, clock);
  const request = { reservationId: held.id, userId: "slowpoke", idempotencyKey: "slow-key" };
  // The first attempt begins before the hold's end and is held up before it locks the seat.
  let go!: () => void;
  const gate = new Promise<void>((resolve) => (go = resolve));
  let atGate = false;
  const first = outcome(
    payReservation(
      db.orm,
      request,
      () => {
        atGate = true;
        return gate;
      },
      clock,
    ),
  );
  await waitFor(() => atGate, { timeoutMs: 30_000 });
  clock.advance(PAST_THE_HOLD_MS);
  t.is(await outcome(payReservation(db.orm, request, undefined, clock)), "RESERVATION_EXPIRED");
  go();
  t.is(await first, "RESERVATION_EXPIRED", "both calls with the key get the same answer");
  t.is(await balanceOf(db.orm, "slowpoke"), 50_000n);
  t.like(await reservationRow(db.orm, held.id), { status: "EXPIRED" });
  t.is((await seatRow(db.orm, held.seatId)).status, "AVAILABLE");
  t.is((await outboxRows(db.orm, held.id)).length, 0);
});

test("a key that paid another reservation is IDEMPOTENCY_KEY_REUSED even when the balance is short", async (t) => {
  const first = await hold("reuser");
  const second = await hold("reuser");
  await fund(db.orm, "reuser", first.priceMinor);
  t.is(
    await outcome(payReservation(db.orm, { reservationId: first.id, userId: "reuser", idempotencyKey: "once" })),
    "OK",
  );
  t.is(
    await outcome(payReservation(db.orm, { reservationId: second.id, userId: "reuser", idempotencyKey: "once" })),
    "IDEMPOTENCY_KEY_REUSED",
  );
  await fund(db.orm, "reuser", second.priceMinor);
  t.is(
    await outcome(payReservation(db.orm, { reservationId: second.id, userId: "reuser", idempotencyKey: "once" })),
    "IDEMPOTENCY_KEY_REUSED",
  );
});

test("a short balance or no wallet is INSUFFICIENT_BALANCE; the hold stays payable", async (t) => {
  const held = await hold("broke");
  t.is(
    await outcome(payReservation(db.orm, { reservationId: held.id, userId: "broke", idempotencyKey: "b1" })),
    "INSUFFICIENT_BALANCE",
  );
  await fund(db.orm, "broke", held.priceMinor - 1n);
  t.is(
    await outcome(payReservation(db.orm, { reservationId: held.id, userId: "broke", idempotencyKey: "b2" })),
    "INSUFFICIENT_BALANCE",
  );
  t.like(await reservationRow(db.orm, held.id), { status: "HELD" });
  t.is((await seatRow(db.orm, held.seatId)).status, "HELD");
  await fund(db.orm, "broke", 1n);
  t.is(
    (await payReservation(db.orm, { reservationId: held.id, userId: "broke", idempotencyKey: "b3" })).wallet
      .balanceMinor,
    0n,
  );
});

test("someone else's or an unknown reservation is RESERVATION_NOT_FOUND; a cancelled one is not payable", async (t) => {
  await fund(db.orm, "thief", 50_000n);
  const held = await hold("victim");
  t.is(
    await outcome(payReservation(db.orm, { reservationId: held.id, userId: "thief", idempotencyKey: "t1" })),
    "RESERVATION_NOT_FOUND",
  );
  t.is(
    await outcome(
      payReservation(db.orm, {
        reservationId: "00000000-0000-0000-0000-000000000000",
        userId: "thief",
        idempotencyKey: "t2",
      }),
    ),
    "RESERVATION_NOT_FOUND",
  );
  await cancelReservation(db.orm, { reservationId: held.id, userId: "victim" });
  await fund(db.orm, "victim", 50_000n);
  t.is(
    await outcome(payReservation(db.orm, { reservationId: held.id, userId: "victim", idempotencyKey: "v1" })),
    "RESERVATION_NOT_PAYABLE",
  );
  t.is(await balanceOf(db.orm, "thief"), 50_000n);
});

test("cancelling a paid reservation refunds it through the ledger and frees the seat", async (t) => {
  await fund(db.orm, "refundee", 50_000n);
  const held = await hold("refundee");
  await payReservation(db.orm, { reservationId: held.id, userId: "refundee", idempotencyKey: "r1" });
  const cancelled = await cancelReservation(
    db.orm,
    { reservationId: held.id, userId: "refundee" },
    { refund: refundPayment },
  );
  t.is(cancelled.status, "CANCELLED");
  t.is(await balanceOf(db.orm, "refundee"), 50_000n);
  t.deepEqual(await ledgerOf(db.orm, "refundee"), { sum: 50_000n, rows: 3 });
  t.like(await seatRow(db.orm, held.seatId), { status: "AVAILABLE" });
  t.deepEqual(
    (await outboxRows(db.orm, held.id)).map((e) => e.eventType),
    [PAYMENT_COMPLETED, PAYMENT_REFUNDED],
  );
  // A second cancel neither refunds again nor fails.
  t.is(
    (await cancelReservation(db.orm, { reservationId: held.id, userId: "refundee" }, { refund: refundPayment })).status,
    "CANCELLED",
  );
  t.is(await balanceOf(db.orm, "refundee"), 50_000n);
});

test("concurrent payments and top-ups on one wallet keep balance = Σ ledger and never go negative", async (t) => {
  const user = "busy";
  await fund(db.orm, user, 30_000n);
  const holds = await Promise.all(Array.from({ length: 40 }, () => hold(user)));
  const pays = holds.map((h, i) =>
    outcome(payReservation(db.orm, { reservationId: h.id, userId: user, idempotencyKey: `p-${i}` })),
  );
  const topUps = Array.from({ length: 40 }, (_, i) => outcome(fund(db.orm, user, BigInt(1000 + i))));
  const [payOutcomes, topUpOutcomes] = await Promise.all([Promise.all(pays), Promise.all(topUps)]);
  t.deepEqual(tally(topUpOutcomes), { OK: 40 });
  const paid = tally(payOutcomes);
  t.deepEqual(
    Object.keys(paid).filter((o) => o !== "OK" && o !== "INSUFFICIENT_BALANCE"),
    [],
    JSON.stringify(paid),
  );
  t.true((paid.OK ?? 0) > 0 && (paid.INSUFFICIENT_BALANCE ?? 0) > 0, JSON.stringify(paid));
  const balance = await balanceOf(db.orm, user);
  t.true(balance >= 0n);
  t.deepEqual(await ledgerOf(db.orm, user), { sum: balance, rows: 1 + 40 + paid.OK! });
});
