// A token's record in Redis (qt:{token}): its state, concert, user and active expiry in one
// string, so the booking and payment guard checks a token with one GET (redis-queue.ts).

import type { QueueState } from "./queue-entry.entity.js";

export interface TokenRecord {
  state: QueueState;
  concertId: string;
  userId: string;
  /** Epoch ms; 0 unless ACTIVE. */
  activeExpireMs: number;
}

const STATE_DIGIT: Record<QueueState, string> = { WAITING: "1", ACTIVE: "2", EXPIRED: "3" };
const DIGIT_STATE: Record<string, QueueState> = { 1: "WAITING", 2: "ACTIVE", 3: "EXPIRED" };
/** Long enough for any wait; admission and expiry shorten it. */
const WAITING_RECORD_TTL_MS = 7 * 24 * 3600_000;
/** How long a finished token still answers EXPIRED rather than unknown. */
const ENDED_RECORD_TTL_MS = 3600_000;

export function encodeRecord(record: TokenRecord): string {
  return `${STATE_DIGIT[record.state]}|${record.concertId}|${record.userId}|${record.activeExpireMs}`;
}

export function decodeRecord(value: string | null): TokenRecord | undefined {
  if (!value) return undefined;
  const [digit, concertId, userId, expire] = value.split("|");
  const state = DIGIT_STATE[digit ?? ""];
  if (!state || !concertId || !userId) return undefined;
  return { state, concertId, userId, activeExpireMs: Number(expire) };
}

export function recordTtlMs(record: TokenRecord, nowMs: number): number {
  if (record.state === "WAITING") return WAITING_RECORD_TTL_MS;
  if (record.state === "ACTIVE") return Math.max(record.activeExpireMs - nowMs, 0) + ENDED_RECORD_TTL_MS;
  return ENDED_RECORD_TTL_MS;
}
