// A payment's rows: the one statement that writes everything a payment changes except the wallet
// (reservation, seat, payment, ledger entry, outbox event), and the lookup of a payment by its
// idempotency key. reservation-payment.ts runs them inside its transaction.

import { sql } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { ReservationView } from "../booking/reservation-rows.js";
import { asDate, seatOnSaleQuery, toSeatOnSale, type SeatOnSale, type SeatOnSaleRow } from "../booking/sale-gate.js";
import { Reservation } from "../booking/reservation.entity.js";
import { Seat } from "../booking/seat.entity.js";
import { compileQuery, dataModifying, insertBuilder } from "../platform/db/compiled-query.js";
import { outboxInsert } from "../platform/db/outbox.js";
import { CURRENCY } from "../platform/money.js";
import { Payment } from "./payment.entity.js";
import { ledgerEntryInsert, type WalletRow, type WalletView } from "./wallet-ledger.js";
import { walletVersionedUpdate } from "./wallet-writes.js";

export const PAYMENT_COMPLETED = "payment.completed";

export interface PaymentView {
  id: string;
  reservationId: string;
  userId: string;
  amountMinor: bigint;
  createdAt: Date;
}

const paymentByKey = compileQuery<{ userId: string; idempotencyKey: string }>(["userId", "idempotencyKey"], (em, p) =>
  em
    .createQueryBuilder(Payment)
    .select(["id", "reservationId", "userId", "amountMinor", "createdAt"])
    .where({ userId: p.userId, idempotencyKey: p.idempotencyKey })
    .limit(1),
);

const paymentInsert = insertBuilder<PaymentView & { idempotencyKey: string }>(Payment, [
  "id",
  "reservationId",
  "userId",
  "amountMinor",
  "createdAt",
  "idempotencyKey",
]);

/** The values of recordPaymentRows. */
interface PaymentRows {
  reservationId: string;
  seatId: string;
  userId: string;
  now: Date;
  paymentId: string;
  amountMinor: bigint;
  /** The ledger's signed amount: −amountMinor. */
  debitMinor: bigint;
  balanceAfterMinor: bigint;
  idempotencyKey: string;
  requestFingerprint: string;
  eventId: string;
  payload: Record<string, unknown>;
  /** The wallet's version as read, and the one its debit writes. */
  walletVersion: number;
  nextWalletVersion: number;
}

/**
 * Everything a payment writes except the wallet, in one statement (one round trip instead of
 * five): data-modifying WITH queries confirm the hold (only if still HELD and unexpired), mark
 * the seat sold, and insert the payment, its ledger entry and the outbox event. The statement
 * returns one row when the hold was confirmed and none when it was not; in that case the caller
 * rolls the whole transaction back, since the other WITH queries ran regardless. The row carries
 * the schedules in which the payer still holds other unexpired seats.
 */
export const recordPaymentRows = compileQuery<PaymentRows>(
  [
    "reservationId",
    "seatId",
    "userId",
    "now",
    "paymentId",
    "amountMinor",
    "debitMinor",
    "balanceAfterMinor",
    "idempotencyKey",
    "requestFingerprint",
    "eventId",
    "payload",
    "walletVersion",
    "nextWalletVersion",
  ],
  (em, p) =>
    em
      .createQueryBuilder(Reservation, "r")
      .with(
        "confirmed",
        dataModifying(
          em
            .createQueryBuilder(Reservation)
            .update({ status: "CONFIRMED", confirmedAt: p.now })
            .where({ id: p.reservationId, status: "HELD", expireTime: { $gt: p.now } })
            .returning(["id", "confirmedAt"]),
        ),
      )
      .with(
        "sold",
        dataModifying(
          em.createQueryBuilder(Seat).update({ status: "RESERVED", heldUntil: null }).where({ id: p.seatId }),
        ),
      )
      .with(
        "paid",
        dataModifying(
          paymentInsert(em, {
            id: p.paymentId,
            reservationId: p.reservationId,
            userId: p.userId,
            amountMinor: p.amountMinor,
            createdAt: p.now,
            idempotencyKey: p.idempotencyKey,
          }),
        ),
      )
      .with(
        "entry",
        dataModifying(
          ledgerEntryInsert(em, {
            userId: p.userId,
            kind: "PAYMENT",
            amountMinor: p.debitMinor,
            balanceAfterMinor: p.balanceAfterMinor,
            idempotencyKey: p.idempotencyKey,
            requestFingerprint: p.requestFingerprint,
            reservationId: p.reservationId,
            createdAt: p.now,
          }),
        ),
      )
      .with(
        "event",
        dataModifying(
          outboxInsert(em, {
            eventId: p.eventId,
            eventType: PAYMENT_COMPLETED,
            aggregateType: "reservation",
            aggregateId: p.reservationId,
            payload: p.payload,
            createdAt: p.now,
          }),
        ),
      )
      // Last, so the contended wallet row is locked for the shortest time.
      .with(
        "debited",
        dataModifying(
          walletVersionedUpdate(em, {
            userId: p.userId,
            version: p.walletVersion,
            nextVersion: p.nextWalletVersion,
            balanceMinor: p.balanceAfterMinor,
            updatedAt: p.now,
          }),
        ),
      )
      .select([
        sql`exists (select 1 from debited)`.as("walletDebited"),
        // The WITH queries' changes are invisible to the rest of the statement: this reservation
        // still reads HELD here. (A raw fragment's values are inlined, not bound: it takes none.)
        sql`(select coalesce(json_agg(distinct h.schedule_id), '[]') from reservation h, confirmed c where h.user_id = r.user_id and h.status = 'HELD' and h.expire_time > c.confirmed_at and h.id <> r.id)`.as(
          "heldScheduleIds",
        ),
      ])
      .where({ id: p.reservationId })
      .andWhere("exists (select 1 from confirmed)"),
);

/** The wallet's columns of lockSeatReadingWallet's row; all null when the payer has no wallet. */
type WalletColumns = {
  [K in "userId" | "balanceMinor" | "version" | "updatedAt" as `wallet${Capitalize<K>}`]: WalletRow[K] | string | null;
};

/**
 * The payment's seat lock (sale-gate.ts: the seat row alone, with its schedule's sale), reading
 * the payer's wallet in the same statement, unlocked: one round trip for both. The wallet is as
 * the statement's snapshot saw it, which is older than the lock when the statement waited for it;
 * the versioned debit then finds another version and the payment reruns, as for any writer that
 * got there first.
 */
const seatOnSaleWithWallet = compileQuery<{ seatId: string; userId: string }>(["seatId", "userId"], (em, p) =>
  seatOnSaleQuery(em, p.seatId)
    .leftJoin(sql.ref("wallet"), "w", { "w.user_id": p.userId })
    .addSelect([
      sql.ref("w.user_id").as("walletUserId"),
      sql.ref("w.balance_minor").as("walletBalanceMinor"),
      sql.ref("w.version").as("walletVersion"),
      sql.ref("w.updated_at").as("walletUpdatedAt"),
    ])
    .limit(1),
);

export async function lockSeatReadingWallet(
  em: EntityManager,
  seatId: string,
  userId: string,
): Promise<{ seat: SeatOnSale | null; wallet: WalletView | null }> {
  const row = await seatOnSaleWithWallet.get<SeatOnSaleRow & WalletColumns>(em, { seatId, userId });
  if (!row) return { seat: null, wallet: null };
  const { walletUserId, walletBalanceMinor, walletVersion, walletUpdatedAt } = row;
  const wallet =
    walletUserId === null
      ? null
      : {
          userId: walletUserId,
          balanceMinor: BigInt(walletBalanceMinor!),
          version: Number(walletVersion),
          updatedAt: asDate(walletUpdatedAt ?? null) ?? undefined,
        };
  return { seat: toSeatOnSale(row), wallet };
}

/** A plain row (see reservation-rows.ts): the amount arrives as a string. */
export async function findPayment(
  em: EntityManager,
  userId: string,
  idempotencyKey: string,
): Promise<PaymentView | null> {
  const row = await paymentByKey.get<Omit<PaymentView, "amountMinor"> & { amountMinor: string }>(em, {
    userId,
    idempotencyKey,
  });
  return row ? { ...row, amountMinor: BigInt(row.amountMinor) } : null;
}

export function paymentPayload(payment: PaymentView, reservation: ReservationView): Record<string, unknown> {
  return {
    payment_id: payment.id,
    reservation_id: reservation.id,
    user_id: reservation.userId,
    schedule_id: reservation.scheduleId,
    seat_id: reservation.seatId,
    amount_minor: payment.amountMinor.toString(),
    currency_code: CURRENCY,
    paid_at: payment.createdAt.toISOString(),
  };
}
