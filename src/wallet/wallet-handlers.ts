// WalletService over the generated types: validation, then the ledger operations, then mapping
// to protobuf. Shared by the grpc-js and connect-node transports.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  LedgerEntryKind,
  WalletService,
  type LedgerEntrySchema,
  type PayReservationResponseSchema,
  type PaymentSchema,
  type WalletSchema,
} from "../../gen/concert/v1/wallet_pb.js";
import { reservationToProto } from "../booking/booking-handlers.js";
import { createConcertOfSchedule } from "../booking/catalog.js";
import { liveHoldScheduleIds } from "../booking/seat-hold.js";
import type { ORM } from "../platform/db/orm.js";
import type { Logger } from "../platform/logger.js";
import { encodePageToken, readPage } from "../platform/pagination.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { check, isInt8String } from "../platform/validation.js";
import { DomainError } from "../platform/domain-error.js";
import { expiredTokenKey, requireAdmitted, type AdmittedToken } from "../queue/admission-context.js";
import type { LedgerEntry } from "./ledger-entry.entity.js";
import { findPaymentReplay, payReservation, type PaymentView, type PayResult } from "./reservation-payment.js";
import {
  getWallet,
  listTransactions,
  MAX_TOP_UP_MINOR,
  topUp,
  WALLET_CURRENCY,
  type LedgerEntryView,
  type WalletView,
} from "./wallet-ledger.js";

const money = (amountMinor: bigint) => ({ amountMinor, currencyCode: WALLET_CURRENCY });

export function walletToProto(wallet: WalletView): MessageInitShape<typeof WalletSchema> {
  return {
    userId: wallet.userId,
    balance: money(wallet.balanceMinor),
    version: BigInt(wallet.version),
    updateTime: wallet.updatedAt ? timestampFromDate(wallet.updatedAt) : undefined,
  };
}

export function ledgerEntryToProto(entry: LedgerEntryView | LedgerEntry): MessageInitShape<typeof LedgerEntrySchema> {
  return {
    id: entry.id,
    userId: entry.userId,
    kind: LedgerEntryKind[entry.kind],
    amount: money(entry.amountMinor),
    balanceAfter: money(entry.balanceAfterMinor),
    idempotencyKey: entry.idempotencyKey,
    reservationId: entry.reservationId ?? "",
    createTime: timestampFromDate(entry.createdAt),
  };
}

function paymentResponse(result: PayResult): MessageInitShape<typeof PayReservationResponseSchema> {
  return {
    payment: paymentToProto(result.payment),
    reservation: reservationToProto(result.reservation, new Date()),
    wallet: walletToProto(result.wallet),
  };
}

export function paymentToProto(payment: PaymentView): MessageInitShape<typeof PaymentSchema> {
  return {
    id: payment.id,
    reservationId: payment.reservationId,
    userId: payment.userId,
    amount: money(payment.amountMinor),
    createTime: timestampFromDate(payment.createdAt),
  };
}

export interface WalletDeps {
  orm: ORM;
  logger: Logger;
  /** Called after a payment commits, e.g. to wake the outbox relay. */
  onPaymentCommitted?: () => void;
  /** Gives up the caller's queue slot so the next waiting user is admitted; best effort. */
  releaseQueueToken?: (token: string) => Promise<void>;
  /** ACTIVE_TOKEN_TTL: when a token was admitted follows from its expiry. */
  activeTokenTtlSeconds: number;
}

export function createWalletHandlers(deps: WalletDeps): PartialServiceImpl<typeof WalletService> {
  const { orm, logger, onPaymentCommitted, releaseQueueToken } = deps;
  const concertOf = createConcertOfSchedule(orm);

  // A user holding several seats of the concert keeps the slot until the last one is paid (or
  // expires with the token); a failed release only delays the next admission until the token's TTL.
  // `heldScheduleIds` comes with a fresh payment (read in its transaction); a replay queries them.
  const releaseSlot = async (admitted: AdmittedToken, heldScheduleIds?: readonly string[]) => {
    if (!releaseQueueToken) return;
    try {
      for (const scheduleId of heldScheduleIds ?? (await liveHoldScheduleIds(orm.em.fork(), admitted.userId))) {
        if ((await concertOf(scheduleId)) === admitted.concertId) return;
      }
      await releaseQueueToken(admitted.token);
    } catch (error) {
      logger.warn({ err: error, userId: admitted.userId }, "could not release the queue token after payment");
    }
  };

  /** Whether the replayed payment could have been made with this token: same concert, admitted before it. */
  const paidWithToken = async (admitted: AdmittedToken, result: PayResult): Promise<boolean> => {
    const admittedAt = admitted.activeExpireAt.getTime() - deps.activeTokenTtlSeconds * 1000;
    return (
      admittedAt <= result.payment.createdAt.getTime() &&
      (await concertOf(result.reservation.scheduleId)) === admitted.concertId
    );
  };

  return {
    async getBalance(request) {
      check().userId("user_id", request.userId).throwIfInvalid();
      return { wallet: walletToProto(await getWallet(orm.em.fork(), request.userId)) };
    },

    async topUp(request) {
      const checker = check().userId("user_id", request.userId).key("idempotency_key", request.idempotencyKey);
      if (!request.amount) {
        checker.fail("amount", "required");
      } else {
        checker.range("amount.amount_minor", request.amount.amountMinor, 1n, MAX_TOP_UP_MINOR);
        if (request.amount.currencyCode !== "" && request.amount.currencyCode !== WALLET_CURRENCY) {
          checker.fail("amount.currency_code", `must be empty or ${WALLET_CURRENCY}`);
        }
      }
      checker.throwIfInvalid();
      const result = await topUp(orm, request.userId, request.amount!.amountMinor, request.idempotencyKey);
      return { wallet: walletToProto(result.wallet), entry: ledgerEntryToProto(result.entry) };
    },

    async listTransactions(request) {
      const checker = check().userId("user_id", request.userId);
      const filter = `ledger:${request.userId}`;
      const page = readPage(checker, request, { filter, defaultSize: 50, maxSize: 500, isKey: isInt8String });
      checker.throwIfInvalid();
      const { items, hasMore } = await listTransactions(orm.em.fork(), request.userId, page);
      return {
        entries: items.map(ledgerEntryToProto),
        nextPageToken: hasMore ? encodePageToken(filter, items.at(-1)!.id) : "",
      };
    },

    async payReservation(request, context) {
      check()
        .uuid("reservation_id", request.reservationId)
        .userId("user_id", request.userId)
        .key("idempotency_key", request.idempotencyKey)
        .throwIfInvalid();
      const expired = context.values.get(expiredTokenKey);
      if (expired) {
        if (expired.userId !== request.userId)
          throw new DomainError("QUEUE_TOKEN_MISMATCH", "the queue token belongs to another user");
        const replay = await findPaymentReplay(orm, request);
        if (!replay) throw expired.error;
        return paymentResponse(replay);
      }
      const admitted = requireAdmitted(context, { userId: request.userId });
      const result = await payReservation(orm, request, async ({ scheduleId }, em) => {
        requireAdmitted(context, { concertId: await concertOf(scheduleId, em) });
      });
      if (!result.replayed) onPaymentCommitted?.();
      // Also on a replay: the first attempt may have committed and died before it released the
      // slot, which would otherwise stay taken until ACTIVE_TOKEN_TTL. Releasing twice is harmless.
      // But only the token that paid: a retry sent later with a new token (the user queued again,
      // maybe for another concert) must not lose that one.
      if (!result.replayed || (await paidWithToken(admitted, result)))
        await releaseSlot(admitted, result.heldScheduleIds);
      return paymentResponse(result);
    },
  };
}
