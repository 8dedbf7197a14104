// Queue tokens: 128 random bits as 32 hex digits. The bytes come from the CSPRNG in blocks, as
// Node's randomUUID does: a flash crowd mints one token per join, and one randomBytes call each
// was a visible share of a join's CPU.

import { randomFillSync } from "node:crypto";

const TOKEN_BYTES = 16;
const pool = Buffer.alloc(TOKEN_BYTES * 256);
let offset = pool.length;

export function newQueueToken(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString("hex", offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
}
