// The one place where failures become wire errors. Both transports (grpc-js and connect-node)
// see only ConnectErrors produced here: a code from design.md §2 plus a google.rpc.ErrorInfo
// (and a BadRequest for invalid fields). Anything unrecognised is a bug and becomes INTERNAL.

import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { DomainError, OverloadedError, UnavailableError, type Reason } from "../domain-error.js";

export const ERROR_DOMAIN = "concert.v1";

const CODE_BY_REASON: Record<Reason, Code> = {
  INVALID_FIELD: Code.InvalidArgument,
  QUEUE_TOKEN_INVALID: Code.Unauthenticated,
  QUEUE_TOKEN_NOT_ACTIVE: Code.PermissionDenied,
  QUEUE_TOKEN_EXPIRED: Code.PermissionDenied,
  QUEUE_TOKEN_MISMATCH: Code.PermissionDenied,
  SEAT_UNAVAILABLE: Code.FailedPrecondition,
  SEAT_LIMIT_REACHED: Code.FailedPrecondition,
  RESERVATION_EXPIRED: Code.FailedPrecondition,
  INSUFFICIENT_BALANCE: Code.FailedPrecondition,
  RESERVATION_NOT_PAYABLE: Code.FailedPrecondition,
  IDEMPOTENCY_KEY_REUSED: Code.InvalidArgument,
  CONCURRENT_UPDATE: Code.Aborted,
  CONCERT_NOT_FOUND: Code.NotFound,
  SCHEDULE_NOT_FOUND: Code.NotFound,
  SEAT_NOT_FOUND: Code.NotFound,
  RESERVATION_NOT_FOUND: Code.NotFound,
  WALLET_NOT_FOUND: Code.NotFound,
  OVERLOADED: Code.ResourceExhausted,
  UNAVAILABLE: Code.Unavailable,
  ADMIN_TOKEN_INVALID: Code.Unauthenticated,
  QUEUE_CLOSED: Code.FailedPrecondition,
  SCHEDULE_NOT_UPDATABLE: Code.FailedPrecondition,
  QUEUE_ENTRY_NOT_FOUND: Code.NotFound,
  SCHEDULE_NOT_ON_SALE: Code.FailedPrecondition,
  SALE_NOT_OPEN: Code.FailedPrecondition,
  SALE_CLOSED: Code.FailedPrecondition,
};

export function codeForReason(reason: Reason): Code {
  return CODE_BY_REASON[reason];
}

/**
 * Trailer with which grpc-js and grpc-go clients' retry policies wait as told instead of their own
 * backoff (gRFC A6); the grpc-js adapter sends a ConnectError's metadata as trailers.
 */
export const RETRY_PUSHBACK_HEADER = "grpc-retry-pushback-ms";

export function domainErrorToConnect(error: DomainError): ConnectError {
  const details: NonNullable<ConstructorParameters<typeof ConnectError>[3]> = [
    { desc: ErrorInfoSchema, value: { reason: error.reason, domain: ERROR_DOMAIN, metadata: { ...error.metadata } } },
  ];
  if (error.fieldViolations.length > 0) {
    details.push({ desc: BadRequestSchema, value: { fieldViolations: error.fieldViolations.map((v) => ({ ...v })) } });
  }
  let metadata: Record<string, string> | undefined;
  if (error instanceof OverloadedError) {
    const retryAfterMs = Math.max(Math.round(error.retryAfterMs), 0);
    details.push({ desc: RetryInfoSchema, value: { retryDelay: durationFromMs(retryAfterMs) } });
    metadata = { [RETRY_PUSHBACK_HEADER]: String(retryAfterMs) };
  }
  return new ConnectError(error.message, codeForReason(error.reason), metadata, details, error);
}

const CONNECTION_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"]);

const REDIS_OR_PG_UNREACHABLE = new RegExp(
  [
    "Connection terminated",
    "connection timeout",
    "timeout exceeded when trying to connect",
    "and is not queryable", // pg
    "Connection is closed",
    "Stream isn't writeable",
    "Command timed out", // ioredis
    "Cluster isn't ready",
    "None of startup nodes is available",
    "Cluster is ended",
    "Too many Cluster redirections",
    "CLUSTERDOWN", // ioredis Cluster
  ].join("|"),
  "i",
);

/** Whether `error` or one of its causes (libraries and the ORM wrap them) passes `test`. */
function someCause(error: unknown, test: (e: Error) => boolean): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
    if (test(e)) return true;
  return false;
}

/** PostgreSQL/Redis connectivity failures, whatever library raised them. */
export function isConnectivityError(error: unknown): boolean {
  return someCause(error, (e) => {
    if (e instanceof UnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (CONNECTION_ERRNOS.has(code) || code.startsWith("57P") || code.startsWith("08"))) {
      return true;
    }
    return REDIS_OR_PG_UNREACHABLE.test(e.message);
  });
}

/** PostgreSQL rolled the transaction back for a conflict with another (SQLSTATE 40001, 40P01): a retry may pass. */
const isTransactionConflict = (error: unknown) =>
  someCause(error, (e) => ["40001", "40P01"].includes((e as { code?: unknown }).code as string));

/**
 * Maps any thrown value to a ConnectError. `onBug` sees every error that maps to INTERNAL so it
 * can be logged with its stack; callers never see internals.
 */
export function toConnectError(error: unknown, onBug: (error: unknown) => void): ConnectError {
  if (error instanceof DomainError) return domainErrorToConnect(error);
  if (error instanceof ConnectError) return error;
  if (isConnectivityError(error)) {
    return domainErrorToConnect(new DomainError("UNAVAILABLE", "a backing store is unreachable; retry shortly"));
  }
  if (isTransactionConflict(error)) {
    const why =
      "the database aborted the transaction for a conflict with another (deadlock or serialization); safe to retry";
    return domainErrorToConnect(new DomainError("CONCURRENT_UPDATE", why));
  }
  onBug(error);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}
