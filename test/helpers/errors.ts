// Assertions on the wire errors: code plus the ErrorInfo reason, however the client decoded them.

import { Code, ConnectError } from "@connectrpc/connect";
import type { ExecutionContext } from "ava";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

export function errorReason(error: unknown): string | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}

export function fieldViolations(error: unknown): string[] {
  if (!(error instanceof ConnectError)) return [];
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

/** Awaits `promise`, expecting a ConnectError with `code` and ErrorInfo `reason`. */
export async function expectError(
  t: ExecutionContext,
  promise: Promise<unknown>,
  code: Code,
  reason?: string,
): Promise<ConnectError> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof ConnectError, `expected a ConnectError, got ${String(error)}`);
  const connectError = error as ConnectError;
  t.is(Code[connectError.code], Code[code], connectError.message);
  if (reason !== undefined) t.is(errorReason(connectError), reason);
  return connectError;
}
