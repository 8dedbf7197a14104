// The queue-token check in front of BookingService and WalletService: the caller must hold an
// ACTIVE token in metadata x-queue-token. One Redis GET on the token's own key in the common
// case (PostgreSQL while Redis is down); the admitted token then travels in the context so
// handlers can check user and concert (requireAdmitted).

import { DomainError } from "../platform/domain-error.js";
import type { CallGuard } from "../platform/rpc/service-wrapper.js";
import { admittedTokenKey, expiredTokenKey, QUEUE_TOKEN_HEADER } from "./admission-context.js";
import type { QueueTokenValidator } from "./waiting-room.js";

const TOKEN = /^[0-9a-f]{32}$/;

export interface GuardScope {
  /**
   * For an idempotent method whose retry must still work after the first call used the token up
   * (PayReservation releases it): an expired token is passed on in `expiredTokenKey` instead of
   * being refused, and the handler may only replay an earlier result with it.
   */
  replayable?: boolean;
}

/** The check itself; which methods run it is declared beside each handler (platform/rpc/method-table.ts). */
export function createQueueTokenGuard(validator: QueueTokenValidator, scope: GuardScope = {}): CallGuard {
  return async (_request, context) => {
    const token = context.requestHeader.get(QUEUE_TOKEN_HEADER) ?? "";
    if (!TOKEN.test(token)) {
      throw new DomainError(
        "QUEUE_TOKEN_INVALID",
        `metadata ${QUEUE_TOKEN_HEADER} must hold a queue token (32 lowercase hex characters) from JoinQueue`,
      );
    }
    const validation = await validator.validate(token);
    switch (validation.kind) {
      case "unknown":
        throw new DomainError("QUEUE_TOKEN_INVALID", "unknown queue token; join the queue for a new one");
      case "waiting":
        throw new DomainError(
          "QUEUE_TOKEN_NOT_ACTIVE",
          "the queue token is still waiting; watch the queue until it is ACTIVE",
        );
      case "expired": {
        const error = new DomainError(
          "QUEUE_TOKEN_EXPIRED",
          "the queue token expired, left the queue or was used up; join again",
        );
        if (!validation.owner || !scope.replayable) throw error;
        context.values.set(expiredTokenKey, { token, ...validation.owner, error });
        return;
      }
      case "active": {
        const { concertId, userId, activeExpireMs } = validation.record;
        context.values.set(admittedTokenKey, { token, concertId, userId, activeExpireAt: new Date(activeExpireMs) });
      }
    }
  };
}
