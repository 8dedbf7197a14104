// The wallet's use cases as the RPC handlers call them. Paying also decides what becomes of the
// caller's place in the waiting room: once the last seat they hold in the concert is paid, the
// slot goes to the next waiting user.

import type { EntityManager } from "@mikro-orm/postgresql";
import type { Admission } from "../booking/admission.js";
import { createConcertOfSchedule } from "../booking/catalog.js";
import { liveHoldScheduleIds } from "../booking/seat-hold.js";
import type { Clock } from "../platform/clock.js";
import type { CallBound } from "../platform/db/call-bound.js";
import type { GroupCommit } from "../platform/db/group-commit.js";
import type { ORM } from "../platform/db/orm.js";
import { DomainError } from "../platform/domain-error.js";
import type { Logger } from "../platform/logger.js";
import type { Page } from "../platform/pagination.js";
import type { ExpiredToken } from "../queue/admission-context.js";
import { findPaymentReplay, payReservation, type PayInput, type PayResult } from "./reservation-payment.js";
import { getWallet, listTransactions } from "./wallet-ledger.js";
import { topUp } from "./wallet-writes.js";

export interface WalletCommandDeps {
  orm: ORM;
  logger: Logger;
  /** Called after a payment commits, e.g. to wake the outbox relay. */
  onPaymentCommitted?: () => void;
  /** ACTIVE_TOKEN_TTL: when a token was admitted follows from its expiry. */
  activeTokenTtlSeconds: number;
  /** The time payments are checked against (a hold's end); tests step it. */
  clock?: Clock;
  /** Group commit of top-ups and payments with other booking writes (group-commit.ts); without it each commits alone. */
  group?: GroupCommit;
}

export interface PayOutcome {
  result: PayResult;
  /** The caller's queue slot: given up to the next waiting user, or kept for their other holds. */
  slot: "release" | "keep";
}

export function createWalletCommands(deps: WalletCommandDeps) {
  const { orm, logger, onPaymentCommitted } = deps;
  const concertOf = createConcertOfSchedule(orm);

  // A user holding several seats of the concert keeps the slot until the last one is paid (or
  // expires with the token). `heldScheduleIds` comes with a fresh payment (read in its
  // transaction); a replay queries them. Failing to tell only keeps the slot until the token's TTL.
  const slotAfterPayment = async (admission: Admission, heldScheduleIds?: readonly string[]) => {
    try {
      const held = heldScheduleIds ?? (await liveHoldScheduleIds(orm.em.fork(), admission.token.userId));
      for (const scheduleId of held) if (await admission.coversSchedule(scheduleId)) return "keep";
      return "release";
    } catch (error) {
      logger.warn({ err: error, userId: admission.token.userId }, "could not release the queue token after payment");
      return "keep";
    }
  };

  /** Whether the replayed payment could have been made with this token: same concert, admitted before it. */
  const paidWithToken = async (admission: Admission, result: PayResult): Promise<boolean> => {
    const admittedAt = admission.token.activeExpireAt.getTime() - deps.activeTokenTtlSeconds * 1000;
    return (
      admittedAt <= result.payment.createdAt.getTime() &&
      (await admission.coversSchedule(result.reservation.scheduleId))
    );
  };

  return {
    getBalance: (userId: string) => getWallet(orm.em.fork(), userId),

    topUp: (userId: string, amountMinor: bigint, idempotencyKey: string, bound?: CallBound) =>
      topUp(orm, userId, amountMinor, idempotencyKey, bound, deps.group),

    listTransactions: (userId: string, page: Page<string>) => listTransactions(orm.em.fork(), userId, page),

    async payReservation(cmd: PayInput, admission: Admission, bound?: CallBound): Promise<PayOutcome> {
      admission.requireUser(cmd.userId);
      const authorize = ({ scheduleId }: { scheduleId: string }, em: EntityManager) =>
        admission.requireSchedule(scheduleId, em);
      const result = await payReservation(orm, cmd, authorize, deps.clock, bound, deps.group);
      if (!result.replayed) onPaymentCommitted?.();
      // Also on a replay: the first attempt may have committed and died before it released the
      // slot, which would otherwise stay taken until ACTIVE_TOKEN_TTL. Releasing twice is harmless.
      // But only the token that paid: a retry sent later with a new token (the user queued again,
      // maybe for another concert) must not lose that one.
      const paidNow = !result.replayed || (await paidWithToken(admission, result));
      return { result, slot: paidNow ? await slotAfterPayment(admission, result.heldScheduleIds) : "keep" };
    },

    /**
     * A retry of a payment whose first call used the token up: with that token it may only get the
     * first call's result, and anything else is refused as the guard would have refused it.
     */
    async replayPayment(cmd: PayInput, used: ExpiredToken): Promise<PayResult> {
      if (used.userId !== cmd.userId)
        throw new DomainError("QUEUE_TOKEN_MISMATCH", "the queue token belongs to another user");
      const replay = await findPaymentReplay(orm, cmd);
      if (!replay) throw used.error;
      // A used token of another concert could not have paid this reservation.
      if ((await concertOf(replay.reservation.scheduleId)) !== used.concertId)
        throw new DomainError("QUEUE_TOKEN_MISMATCH", "the queue token belongs to another concert");
      return replay;
    },
  };
}
