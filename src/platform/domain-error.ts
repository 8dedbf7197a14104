// Errors the domain raises. They name a stable reason from the contract (concert.v1.ErrorReason)
// and know nothing of transports: src/platform/rpc/error-mapping.ts turns them into gRPC codes.

import type { ErrorReason } from "../../gen/concert/v1/common_pb.js";

/** An ErrorReason value name without its ERROR_REASON_ prefix, e.g. "SEAT_UNAVAILABLE". */
export type Reason = Exclude<keyof typeof ErrorReason, "UNSPECIFIED">;

export interface FieldViolation {
  /** Request field path in proto naming, e.g. "amount.amount_minor". */
  field: string;
  description: string;
}

export class DomainError extends Error {
  override name = "DomainError";
  constructor(
    readonly reason: Reason,
    message: string,
    readonly fieldViolations: readonly FieldViolation[] = [],
    /** Extra ErrorInfo metadata (string values only), e.g. { seat_id }. */
    readonly metadata: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** A configured limit is reached (OVERLOADED); the caller may come back after `retryAfterMs`. */
export class OverloadedError extends DomainError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super("OVERLOADED", message);
  }
}

/** A backing store (PostgreSQL, Redis) could not be reached; callers may retry. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function invalidField(field: string, description: string): DomainError {
  return new DomainError("INVALID_FIELD", `invalid ${field}: ${description}`, [{ field, description }]);
}
