// WalletService over the generated types: each method decodes and validates its request, calls
// its wallet command and encodes the result; its queue-token requirement is declared beside it.
// Shared by the grpc-js and connect-node transports.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  LedgerEntryKind,
  type WalletService,
  type LedgerEntrySchema,
  type PayReservationResponseSchema,
  type PaymentSchema,
  type WalletSchema,
} from "../../gen/concert/v1/wallet_pb.js";
import { createAdmissionReader } from "../booking/admission.js";
import { reservationToProto } from "../booking/booking-proto.js";
import { CURRENCY, money } from "../platform/money.js";
import { encodePageToken, readPage } from "../platform/pagination.js";
import { callBoundOf } from "../platform/rpc/handler-bound.js";
import type { MethodTable } from "../platform/rpc/method-table.js";
import { check, isInt8String } from "../platform/validation.js";
import { expiredTokenKey, type AdmittedToken } from "../queue/admission-context.js";
import type { LedgerEntry } from "./ledger-entry.entity.js";
import type { PaymentView } from "./payment-rows.js";
import type { PayResult } from "./reservation-payment.js";
import { createWalletCommands, type WalletCommandDeps } from "./wallet-commands.js";
import { MAX_TOP_UP_MINOR, type LedgerEntryView, type WalletView } from "./wallet-ledger.js";

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

export interface WalletDeps extends WalletCommandDeps {
  /** Gives up the caller's queue slot so the next waiting user is admitted; best effort. */
  releaseQueueToken?: (token: string) => Promise<void>;
}

export function createWalletHandlers(deps: WalletDeps): MethodTable<typeof WalletService> {
  const { orm, logger, releaseQueueToken } = deps;
  const wallet = createWalletCommands(deps);
  const admissionOf = createAdmissionReader(orm);

  // A failed release is retried by the waiting room in the background (waiting-room.ts).
  const releaseSlot = async (admitted: AdmittedToken) => {
    try {
      await releaseQueueToken?.(admitted.token);
    } catch (error) {
      logger.warn({ err: error, userId: admitted.userId }, "could not release the queue token after payment");
    }
  };

  return {
    getBalance: {
      token: "none",
      async handle(request) {
        check().userId("user_id", request.userId).throwIfInvalid();
        return { wallet: walletToProto(await wallet.getBalance(request.userId)) };
      },
    },

    topUp: {
      token: "none",
      async handle(request, context) {
        const checker = check().userId("user_id", request.userId).key("idempotency_key", request.idempotencyKey);
        if (!request.amount) {
          checker.fail("amount", "required");
        } else {
          checker.range("amount.amount_minor", request.amount.amountMinor, 1n, MAX_TOP_UP_MINOR);
          if (request.amount.currencyCode !== "" && request.amount.currencyCode !== CURRENCY) {
            checker.fail("amount.currency_code", `must be empty or ${CURRENCY}`);
          }
        }
        checker.throwIfInvalid();
        const { amountMinor } = request.amount!;
        const result = await wallet.topUp(request.userId, amountMinor, request.idempotencyKey, callBoundOf(context));
        return { wallet: walletToProto(result.wallet), entry: ledgerEntryToProto(result.entry) };
      },
    },

    listTransactions: {
      token: "none",
      async handle(request) {
        const checker = check().userId("user_id", request.userId);
        const filter = `ledger:${request.userId}`;
        const page = readPage(checker, request, { filter, defaultSize: 50, maxSize: 500, isKey: isInt8String });
        checker.throwIfInvalid();
        const { items, hasMore } = await wallet.listTransactions(request.userId, page);
        return {
          entries: items.map(ledgerEntryToProto),
          nextPageToken: hasMore ? encodePageToken(filter, items.at(-1)!.id) : "",
        };
      },
    },

    payReservation: {
      token: "active-or-used",
      async handle(request, context) {
        check()
          .uuid("reservation_id", request.reservationId)
          .userId("user_id", request.userId)
          .key("idempotency_key", request.idempotencyKey)
          .throwIfInvalid();
        const used = context.values.get(expiredTokenKey);
        if (used) return paymentResponse(await wallet.replayPayment(request, used));
        const admission = admissionOf(context);
        const { result, slot } = await wallet.payReservation(request, admission, callBoundOf(context));
        if (slot === "release") await releaseSlot(admission.token);
        return paymentResponse(result);
      },
    },
  };
}
