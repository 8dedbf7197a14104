// Paying a held seat from the wallet (refunding a paid one is payment-refund.ts). One transaction per payment:
// BEGIN with the read of the reservation (which takes its schedule's shared sale lock); the seat
// row lock, reading whether the schedule is still on sale and the wallet (unlocked) in the same
// statement, then the balance check; one statement that confirms the reservation, marks the seat
// sold, inserts the payment, its PAYMENT ledger entry and the payment.completed outbox event, and
// debits the wallet with its versioned UPDATE (… WHERE version = ?, wallet-writes.ts)
// (recordPaymentRows); COMMIT. Four round trips, where one statement per row took eleven. That order follows the lock order of reservation-rows.ts (seat, reservation,
// wallet) and keeps the contended wallet row locked only from its UPDATE to COMMIT. A version
// conflict reruns the whole transaction (withOptimisticRetry).

import { OptimisticLockError, UniqueConstraintViolationException } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { randomUUID } from "node:crypto";
import {
  expireHeldReservation,
  findOwnReservation,
  findReservation,
  lockSeat,
  reservationNotFound,
  toReservationView,
  visibleReservationStatus,
  type AuthorizeReservation,
  type ReservationView,
} from "../booking/reservation-rows.js";
import { findReservationUnderSaleLock, paymentRefusal } from "../booking/sale-gate.js";
import { systemClock, type Clock } from "../platform/clock.js";
import { throwIfCallOver, type CallBound } from "../platform/db/call-bound.js";
import type { GroupCommit } from "../platform/db/group-commit.js";
import { inCallTransaction, withOptimisticRetry } from "../platform/db/optimistic-retry.js";
import type { ORM } from "../platform/db/orm.js";
import { DomainError } from "../platform/domain-error.js";
import { CURRENCY } from "../platform/money.js";
import {
  findPayment,
  lockSeatReadingWallet,
  paymentPayload,
  recordPaymentRows,
  type PaymentView,
} from "./payment-rows.js";
import { fingerprint, getWallet, readWallet, walletAfterEntry, type WalletView } from "./wallet-ledger.js";

export interface PayInput {
  reservationId: string;
  userId: string;
  idempotencyKey: string;
}

export interface PayResult {
  payment: PaymentView;
  reservation: ReservationView;
  wallet: WalletView;
  /** True when an earlier call with the same key did the work. */
  replayed: boolean;
  /**
   * Schedules in which the payer still holds unexpired seats, read in the payment's own
   * statement (undefined for a replay): whether to give up the queue slot needs no query.
   */
  heldScheduleIds?: string[];
}

/** Why a reservation cannot be paid at `now`, or undefined when it can. */
function unpayable(reservation: ReservationView, now: Date): DomainError | undefined {
  const metadata = { reservation_id: reservation.id };
  switch (visibleReservationStatus(reservation, now)) {
    case "HELD":
      return undefined;
    case "EXPIRED":
      return new DomainError(
        "RESERVATION_EXPIRED",
        `the hold on reservation ${reservation.id} ran out; reserve the seat again`,
        [],
        metadata,
      );
    case "CONFIRMED":
      return new DomainError("RESERVATION_NOT_PAYABLE", `reservation ${reservation.id} is already paid`, [], metadata);
    case "CANCELLED":
      return new DomainError("RESERVATION_NOT_PAYABLE", `reservation ${reservation.id} was cancelled`, [], metadata);
  }
}

/** The result of the call that first used this key, or IDEMPOTENCY_KEY_REUSED for another reservation. */
async function replayPayment(em: EntityManager, payment: PaymentView, input: PayInput): Promise<PayResult> {
  if (payment.reservationId !== input.reservationId) {
    throw new DomainError(
      "IDEMPOTENCY_KEY_REUSED",
      `idempotency key ${input.idempotencyKey} already paid another reservation`,
      [],
      {
        idempotency_key: input.idempotencyKey,
      },
    );
  }
  // The first result: the reservation as the payment confirmed it and the wallet as its debit
  // left it, whatever happened since (a cancel and refund is GetReservation's to tell).
  const reservation = await findOwnReservation(em, payment.reservationId, payment.userId);
  const wallet =
    (await walletAfterEntry(em, payment.userId, "PAYMENT", input.idempotencyKey)) ??
    (await getWallet(em, payment.userId));
  return {
    payment,
    reservation: { ...reservation, status: "CONFIRMED", confirmedAt: payment.createdAt },
    wallet,
    replayed: true,
  };
}

/**
 * The earlier result of this idempotency key, if there is one: a retry whose first attempt paid
 * (and so used up the queue token) gets its answer without a token that is still ACTIVE.
 */
export async function findPaymentReplay(orm: ORM, input: PayInput): Promise<PayResult | undefined> {
  const em = orm.em.fork();
  const previous = await findPayment(em, input.userId, input.idempotencyKey);
  return previous ? replayPayment(em, previous, input) : undefined;
}

/** The payment INSERT hit the (user, idempotency key) unique index: the key paid another reservation. */
class KeyAlreadyUsed extends Error {}

/** The hold could not be confirmed once its seat was locked (paid, cancelled or expired meanwhile). */
class HoldNotConfirmed extends Error {}

/** The reservation is HELD but its hold ended before this attempt began; no payment with the key was seen. */
class HoldRanOut extends Error {
  constructor(
    readonly reservation: ReservationView,
    readonly now: Date,
  ) {
    super(`the hold on reservation ${reservation.id} ran out`);
  }
}

export async function payReservation(
  orm: ORM,
  input: PayInput,
  authorize?: AuthorizeReservation,
  clock: Clock = systemClock,
  bound?: CallBound,
  group?: GroupCommit,
): Promise<PayResult> {
  const alone = () => withOptimisticRetry(orm, (em) => payInTransaction(em, input, authorize, clock), bound);
  try {
    // With `group`, the first attempt shares a transaction with concurrent holds, top-ups and
    // payments (group-commit.ts), never with another call of the same user or for the same reservation.
    return await (group
      ? group.run({
          keys: [`user:${input.userId}`, `reservation:${input.reservationId}`],
          work: (em) => payInTransaction(em, input, authorize, clock),
          alone,
          bound,
        })
      : alone());
  } catch (error) {
    if (!(error instanceof KeyAlreadyUsed || error instanceof HoldNotConfirmed || error instanceof HoldRanOut))
      throw error;
    throwIfCallOver(bound);
    // An attempt with this key that began before the hold's end may still be running (waiting for
    // the seat lock, say) and would then confirm it. Expiring the hold under the seat lock settles
    // it: that attempt either committed first (and the lookup below replays it) or now finds the
    // reservation EXPIRED. Either way every call with this key gets the same answer.
    if (error instanceof HoldRanOut) await expireRanOutHold(orm, error.reservation, error.now, bound);
    // Rolled back. The first use of the key answers (IDEMPOTENCY_KEY_REUSED for another reservation) …
    const replay = await findPaymentReplay(orm, input);
    if (replay) return replay;
    if (error instanceof KeyAlreadyUsed)
      throw new Error(`idempotency key ${input.idempotencyKey} is taken but no payment carries it`, { cause: error });
    // … or, when no call with this key paid, what became of the hold.
    const current = await findOwnReservation(orm.em.fork(), input.reservationId, input.userId);
    throw (
      unpayable(current, clock()) ??
      new Error(`reservation ${input.reservationId} is payable but was not confirmed`, { cause: error })
    );
  }
}

async function payInTransaction(
  em: EntityManager,
  input: PayInput,
  authorize: AuthorizeReservation | undefined,
  clock: Clock,
): Promise<PayResult> {
  const { reservationId, userId, idempotencyKey } = input;
  // The hold's end is checked against this time, when this attempt began, also in the statement
  // that confirms it: a payment that waited for the seat lock past the end still goes through,
  // unless a hold or the sweeper, which lock the seat too, expired the reservation first.
  const now = clock();
  // Takes the schedule's shared sale lock too (sale-gate.ts): a cancel waits for this payment, or
  // this payment sees the cancel under the seat lock below.
  const row = await findReservationUnderSaleLock(em, reservationId);
  const reservation = row ? toReservationView(row) : null;
  // The caller's token must cover the reservation before anything is told of it, a replay too:
  // a token of another concert gets no stored payment back.
  if (reservation?.userId === userId) await authorize?.(reservation, em);
  // The key is looked up only when the reservation is not payable as it stands (a retry of a
  // payment that went through finds it CONFIRMED): the usual first attempt saves a statement.
  // Reservation first, then the key: a concurrent call with this key commits both together, so
  // if this read already sees its CONFIRMED, the later key lookup sees its payment too. A key
  // used before for another reservation is caught by the payment's unique index below.
  if (reservation?.userId !== userId || unpayable(reservation, now)) {
    const previous = await findPayment(em, userId, idempotencyKey);
    if (previous) return replayPayment(em, previous, input);
    if (reservation?.userId !== userId) throw reservationNotFound(reservationId);
  }
  const refusal = unpayable(reservation, now);
  if (refusal && reservation.status === "HELD") throw new HoldRanOut(reservation, now);
  if (refusal) throw refusal;

  const { seat, wallet } = await lockSeatReadingWallet(em, reservation.seatId, userId);
  // Never charged for a cancelled schedule, even before the cancel's sweep reached this hold.
  const saleRefusal = seat && paymentRefusal(reservation.scheduleId, seat.sale);
  if (saleRefusal) throw saleRefusal;
  const price = reservation.priceMinor;
  if (!wallet || wallet.balanceMinor < price) {
    // The wallet was read with the seat lock, as it was before any wait for it: a top-up that
    // committed meanwhile reruns the payment rather than refusing it.
    const fresh = await readWallet(em, userId);
    if (fresh && fresh.balanceMinor >= price && fresh.version !== wallet?.version)
      throw OptimisticLockError.lockFailed(`Wallet ${userId}`);
    // Under the seat lock a fresh read of the reservation is authoritative: a hold that another
    // call paid (or that ran out) while this one waited says so rather than "insufficient balance".
    const current = await findReservation(em, reservationId);
    if (!current || unpayable(current, now)) throw new HoldNotConfirmed(`reservation ${reservationId}`);
    // The key was not looked up on the way in (the reservation was payable): a key that already
    // paid another reservation is IDEMPOTENCY_KEY_REUSED whatever the balance.
    const previous = await findPayment(em, userId, idempotencyKey);
    if (previous) return replayPayment(em, previous, input);
    // Throwing rolls the transaction back: nothing is charged, the hold stays as it was.
    const balance = fresh?.balanceMinor ?? 0n;
    throw new DomainError(
      "INSUFFICIENT_BALANCE",
      `the balance ${balance} ${CURRENCY} is lower than the price ${price} ${CURRENCY}`,
      [],
      {
        balance_minor: String(balance),
        price_minor: String(price),
      },
    );
  }
  const debited: WalletView = {
    userId,
    balanceMinor: wallet.balanceMinor - price,
    version: wallet.version + 1,
    updatedAt: now,
  };
  const payment: PaymentView = { id: randomUUID(), reservationId, userId, amountMinor: price, createdAt: now };
  let recorded: { heldScheduleIds: string[]; walletDebited: boolean } | undefined;
  try {
    recorded = await recordPaymentRows.get(em, {
      reservationId,
      seatId: reservation.seatId,
      userId,
      now,
      paymentId: payment.id,
      amountMinor: price,
      debitMinor: -price,
      balanceAfterMinor: debited.balanceMinor,
      idempotencyKey,
      requestFingerprint: fingerprint("PAYMENT", userId, reservationId),
      eventId: randomUUID(),
      payload: paymentPayload(payment, reservation),
      walletVersion: wallet.version,
      nextWalletVersion: debited.version,
    });
  } catch (error) {
    const constraint =
      error instanceof UniqueConstraintViolationException ? (error as { constraint?: string }).constraint : undefined;
    if (constraint === "payment_user_idempotency_uq" || constraint === "ledger_entry_idempotency_uq")
      throw new KeyAlreadyUsed(constraint, { cause: error });
    // Another call (with another key) paid this reservation and committed while this one waited for the seat lock.
    if (constraint === "payment_reservation_uq") throw new HoldNotConfirmed(constraint, { cause: error });
    throw error;
  }
  // Not confirmed: the seat lock showed the hold changed since the unlocked read above.
  if (!recorded) throw new HoldNotConfirmed(`reservation ${reservationId}`);
  // The versioned debit changed no row: another writer changed the wallet since it was read.
  if (!recorded.walletDebited) throw OptimisticLockError.lockFailed(`Wallet ${userId}`);
  return {
    payment,
    reservation: { ...reservation, status: "CONFIRMED", confirmedAt: now },
    wallet: debited,
    replayed: false,
    heldScheduleIds: recorded.heldScheduleIds,
  };
}

/** Marks a hold that ran out by `now` EXPIRED and frees its seat, under the seat lock; no-op if it changed meanwhile. */
async function expireRanOutHold(orm: ORM, reservation: ReservationView, now: Date, bound?: CallBound): Promise<void> {
  await inCallTransaction(
    orm,
    async (em) => {
      await lockSeat(em, reservation.seatId);
      const current = await findReservation(em, reservation.id);
      if (current?.status === "HELD" && current.expireTime <= now) await expireHeldReservation(em, current);
    },
    bound,
  );
}
