// Request validation shared by every handler. Checks collect all violations of one request so a
// caller fixes them in one round trip; throwIfInvalid raises INVALID_FIELD with a BadRequest list.

import { DomainError, type FieldViolation } from "./domain-error.js";

// Lowercase only, as every id this API hands out: Redis keys, idempotency replays and the token's
// concert are compared as strings, so an uppercase spelling of an id would be another id there
// while PostgreSQL took it for the same one (a second place in line for one user, say).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INT8_MAX = 2n ** 63n - 1n;
const INT4_MAX = 2 ** 31 - 1;
const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const KEY = /^[\x21-\x7e]{1,128}$/;

// Guards for the keyset positions decoded from page tokens (readPage's isKey). A token is only
// base64url JSON, so a caller can hand-craft one: its values must fit the columns they are
// compared with, or PostgreSQL refuses the query and the caller sees INTERNAL.

export const isUuid = (value: unknown): value is string => typeof value === "string" && UUID.test(value);
/** A non-negative int4, e.g. a seat number. */
export const isInt4 = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= INT4_MAX;
/** A positive int8 in decimal, e.g. a bigserial id (kept as a string: it may exceed 2^53). */
export const isInt8String = (value: unknown): value is string =>
  typeof value === "string" && /^[1-9]\d{0,18}$/.test(value) && BigInt(value) <= INT8_MAX;

export class RequestCheck {
  private readonly violations: FieldViolation[] = [];

  fail(field: string, description: string): this {
    this.violations.push({ field, description });
    return this;
  }

  uuid(field: string, value: string): this {
    return UUID.test(value) ? this : this.fail(field, value === "" ? "required" : "must be a UUID in lowercase");
  }

  userId(field: string, value: string): this {
    if (value === "") return this.fail(field, "required");
    return USER_ID.test(value) ? this : this.fail(field, "must be 1-128 characters of A-Z a-z 0-9 . _ : @ -");
  }

  /** Idempotency keys and request ids: 1-128 printable ASCII characters. */
  key(field: string, value: string): this {
    if (value === "") return this.fail(field, "required");
    return KEY.test(value) ? this : this.fail(field, "must be 1-128 printable ASCII characters without spaces");
  }

  /** Opaque tokens such as queue tokens: exactly 32 lowercase hex characters. */
  hexToken(field: string, value: string): this {
    if (value === "") return this.fail(field, "required");
    return /^[0-9a-f]{32}$/.test(value) ? this : this.fail(field, "must be 32 lowercase hex characters");
  }

  range(field: string, value: bigint, min: bigint, max: bigint): this {
    return value >= min && value <= max ? this : this.fail(field, `must be between ${min} and ${max}`);
  }

  throwIfInvalid(): void {
    if (this.violations.length === 0) return;
    const summary = this.violations.map((v) => `${v.field}: ${v.description}`).join("; ");
    throw new DomainError("INVALID_FIELD", `invalid request: ${summary}`, this.violations);
  }
}

export function check(): RequestCheck {
  return new RequestCheck();
}
