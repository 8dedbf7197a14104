// Refunding a paid reservation to its owner's wallet: the wallet side of booking's cancel (and
// admin's), reached through the RefundPaidReservation port that app.ts wires in.

import type { EntityManager } from "@mikro-orm/postgresql";
import type { ReservationView } from "../booking/reservation-rows.js";
import { recordEvent } from "../platform/db/outbox.js";
import { CURRENCY } from "../platform/money.js";
import { fingerprint, insertLedgerEntry, loadWallet } from "./wallet-ledger.js";

export const PAYMENT_REFUNDED = "payment.refunded";

/**
 * Credits the price of a CONFIRMED reservation back to its owner's wallet with a REFUND ledger
 * entry and a payment.refunded event: booking's RefundPaidReservation port, wired in app.ts.
 * Runs inside the caller's transaction, after the caller locked the seat and cancelled the
 * reservation; the caller retries on a version conflict (the flush of the wallet entity throws
 * OptimisticLockError).
 */
export async function refundPayment(em: EntityManager, reservation: ReservationView, now: Date): Promise<void> {
  const { id: reservationId, userId, priceMinor } = reservation;
  const wallet = await loadWallet(em, userId);
  // A paid reservation implies a wallet; a missing one would mean the payment never happened.
  if (!wallet) throw new Error(`reservation ${reservationId} is CONFIRMED but ${userId} has no wallet`);
  wallet.balanceMinor += priceMinor;
  wallet.updatedAt = now;
  const balanceAfter = wallet.balanceMinor;
  await insertLedgerEntry(em, {
    userId,
    kind: "REFUND",
    amountMinor: priceMinor,
    balanceAfterMinor: balanceAfter,
    // One refund per reservation, whatever retries happen.
    idempotencyKey: `refund:${reservationId}`,
    requestFingerprint: fingerprint("REFUND", userId, reservationId),
    reservationId,
    createdAt: now,
  });
  await recordEvent(em, {
    eventType: PAYMENT_REFUNDED,
    aggregateType: "reservation",
    aggregateId: reservationId,
    occurredAt: now,
    payload: {
      reservation_id: reservationId,
      user_id: userId,
      amount_minor: priceMinor.toString(),
      currency_code: CURRENCY,
      refunded_at: now.toISOString(),
    },
  });
  await em.flush();
}
