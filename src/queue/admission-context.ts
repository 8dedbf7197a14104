// What the queue-token guard hands to BookingService and WalletService handlers: the ACTIVE
// token that admitted this call. Handlers compare it with the request (user, concert) and raise
// QUEUE_TOKEN_MISMATCH themselves, since only they know which concert a schedule belongs to.

import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../platform/domain-error.js";

export interface AdmittedToken {
  token: string;
  userId: string;
  concertId: string;
  activeExpireAt: Date;
}

export const admittedTokenKey = createContextKey<AdmittedToken | undefined>(undefined, {
  description: "admitted queue token",
});

/** A used-up token let through for an idempotent replay (see GuardScope.replayable). */
export interface ExpiredToken {
  token: string;
  userId: string;
  concertId: string;
  /** What the call gets when there is nothing to replay. */
  error: DomainError;
}

export const expiredTokenKey = createContextKey<ExpiredToken | undefined>(undefined, {
  description: "expired queue token (replay only)",
});

/** Metadata key the token travels in. */
export const QUEUE_TOKEN_HEADER = "x-queue-token";

/**
 * The admitted token of this call, checked against the request's user and, when known, concert.
 * Throws QUEUE_TOKEN_INVALID when the guard did not run (a wiring bug would otherwise let calls
 * through unauthenticated).
 */
export function requireAdmitted(
  context: HandlerContext,
  expected: { userId?: string; concertId?: string },
): AdmittedToken {
  const admitted = context.values.get(admittedTokenKey);
  if (!admitted)
    throw new DomainError(
      "QUEUE_TOKEN_INVALID",
      `metadata ${QUEUE_TOKEN_HEADER} with an ACTIVE queue token is required`,
    );
  if (expected.userId !== undefined && expected.userId !== admitted.userId) {
    throw new DomainError("QUEUE_TOKEN_MISMATCH", "the queue token belongs to another user");
  }
  if (expected.concertId !== undefined && expected.concertId !== admitted.concertId) {
    throw new DomainError("QUEUE_TOKEN_MISMATCH", "the queue token belongs to another concert");
  }
  return admitted;
}
