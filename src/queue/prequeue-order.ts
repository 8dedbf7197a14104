// The prequeue's order, in one place for the server and for `npm run verify-shuffle`. A user's
// place is derived from the concert's seed and their user id alone: the first 52 bits of
// SHA-256(seed || user_id), minus 2^52, used as the sequence number of their place in the line.
// Post-opening joiners get positive sequence numbers (the FIFO counter), so the whole prequeue
// stands ahead of them, in the seed's order, whenever each of its members joined.
//
// User ids rather than tokens: the server draws the tokens and knows the seed, so it could draw a
// token that lands a friend at the head; user ids come from the users, who only know the seed's
// hash until the opening. 52 bits keep every place an integer a Redis score (a double) holds
// exactly; ties need two users with the same 52 bits and are broken by token, as the line is.

import { createHash, randomBytes } from "node:crypto";

export const SEED_BYTES = 32;
const PLACE_SPAN = 2n ** 52n;

/** A fresh seed, hex. */
export const newSeed = (): string => randomBytes(SEED_BYTES).toString("hex");

/** What is published before the opening: the hex SHA-256 of the seed's bytes. */
export const seedDigest = (seedHex: string): string =>
  createHash("sha256").update(Buffer.from(seedHex, "hex")).digest("hex");

export const isSeed = (value: string): boolean => new RegExp(`^[0-9a-f]{${SEED_BYTES * 2}}$`).test(value);

/** The sequence number of a prequeue member's place: negative, from -2^52 to -1. */
export function prequeueSeq(seedHex: string, userId: string): bigint {
  const digest = createHash("sha256").update(Buffer.from(seedHex, "hex")).update(userId, "utf8").digest();
  return (digest.readBigUInt64BE(0) >> 12n) - PLACE_SPAN;
}

/** Places of the line sort by sequence number, then token (as Redis and PostgreSQL order them). */
export function compareLinePlaces(a: { seq: bigint; token: string }, b: { seq: bigint; token: string }): number {
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return a.token < b.token ? -1 : a.token > b.token ? 1 : 0;
}
