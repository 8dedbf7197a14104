// protobuf-es reads a 64-bit integer given as a JSON string with BigInt(), which also takes
// "0x10", "0b11", "0o17", " 100" and "+100". The protobuf JSON mapping allows decimal strings
// (or JSON numbers) only, and a money amount must never be read from anything else, so requests
// on the Connect port are checked against the mapping before protobuf-es reads them; what it
// would refuse too (100.5, out of range, true) is refused here on the field's own path.

import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { FieldViolation } from "../domain-error.js";

const DECIMAL = /^-?[0-9]+$/;

/** The values each kind of 64-bit field holds, the signed ones first. */
const SIGNED_RANGE = [-(2n ** 63n), 2n ** 63n - 1n] as const;
const UNSIGNED_RANGE = [0n, 2n ** 64n - 1n] as const;

const SIGNED_64 = new Set([ScalarType.INT64, ScalarType.SINT64, ScalarType.SFIXED64]);
const UNSIGNED_64 = new Set([ScalarType.UINT64, ScalarType.FIXED64]);

/** The first 64-bit integer field of `json` (a parsed request) that is not in protobuf JSON form. */
export function int64JsonViolation(schema: DescMessage, json: unknown, path = ""): FieldViolation | undefined {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const object = json as Record<string, unknown>;
  for (const field of schema.fields) {
    const value = object[field.jsonName] ?? object[field.name];
    if (value === undefined || value === null) continue;
    const fieldPath = path === "" ? field.name : `${path}.${field.name}`;
    const violation = fieldViolation(field, value, fieldPath);
    if (violation) return violation;
  }
  return undefined;
}

function fieldViolation(field: DescField, value: unknown, fieldPath: string): FieldViolation | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return scalarViolation(field.scalar, value, fieldPath);
    case "list":
      if (!Array.isArray(value)) return undefined;
      for (const item of value) {
        const violation =
          field.listKind === "scalar"
            ? scalarViolation(field.scalar, item, fieldPath)
            : field.listKind === "message"
              ? int64JsonViolation(field.message, item, fieldPath)
              : undefined;
        if (violation) return violation;
      }
      return undefined;
    case "message":
      return int64JsonViolation(field.message, value, fieldPath);
    default:
      return undefined; // enums and maps carry no 64-bit integers in this API
  }
}

/**
 * A decimal string or an integral JSON number (exponent notation included, as the mapping allows)
 * within the field's range; anything else is a violation on the field itself, not a parse error
 * of the whole request.
 */
function scalarViolation(scalar: ScalarType, value: unknown, fieldPath: string): FieldViolation | undefined {
  const signed = SIGNED_64.has(scalar);
  if (!signed && !UNSIGNED_64.has(scalar)) return undefined;
  const integer =
    typeof value === "string" && DECIMAL.test(value)
      ? BigInt(value)
      : typeof value === "number" && Number.isInteger(value)
        ? BigInt(value)
        : undefined;
  const [min, max] = signed ? SIGNED_RANGE : UNSIGNED_RANGE;
  if (integer !== undefined && integer >= min && integer <= max) return undefined;
  return {
    field: fieldPath,
    description: `must be a ${signed ? "" : "non-negative "}64-bit decimal integer (protobuf JSON), got ${JSON.stringify(value)}`,
  };
}
