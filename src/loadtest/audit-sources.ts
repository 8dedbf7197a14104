// The two audit computations that are not plain SQL: reading the run's payment events back from
// the Redis stream, and the sweep line over admission intervals.

import type { RedisClient } from "../platform/redis/client.js";
import { eventStreamKey, fromStreamFields } from "../platform/redis/event-stream.js";

export interface StreamEvidence {
  /** payment.completed entries of the run's reservations, redeliveries included. */
  entries: number;
  distinctEventIds: number;
  distinctReservations: number;
  /** Distinct event ids of the run's reservations that no outbox row carries. */
  unknownEventIds: number;
}

const PAGE = 5000;
/** Stream ids are Redis clock milliseconds; start a little before the run in case the clocks differ. */
const CLOCK_SLACK_MS = 60_000;

export async function readPaymentEvents(
  redis: RedisClient,
  redisKeyPrefix: string,
  outbox: readonly { event_id: string; aggregate_id: string }[],
  since: Date,
): Promise<StreamEvidence> {
  const reservations = new Set(outbox.map((row) => row.aggregate_id));
  const known = new Set(outbox.map((row) => row.event_id));
  const eventIds = new Set<string>();
  const paidReservations = new Set<string>();
  let entries = 0;
  let start = `${Math.max(0, since.getTime() - CLOCK_SLACK_MS)}-0`;
  for (;;) {
    const page = await redis.xrange(eventStreamKey(redisKeyPrefix), start, "+", "COUNT", PAGE);
    for (const [, fields] of page) {
      const event = fromStreamFields(fields);
      if (!event || event.eventType !== "payment.completed" || !reservations.has(event.aggregateId)) continue;
      entries++;
      eventIds.add(event.eventId);
      paidReservations.add(event.aggregateId);
    }
    if (page.length < PAGE) break;
    start = `(${page.at(-1)![0]}`;
  }
  const unknownEventIds = [...eventIds].filter((id) => !known.has(id)).length;
  return { entries, distinctEventIds: eventIds.size, distinctReservations: paidReservations.size, unknownEventIds };
}

/**
 * Most intervals open at one instant. An interval ending exactly when another starts does not
 * overlap it: an admission step may stamp a release and the admission that takes its slot with
 * one clock reading.
 */
export function maxOverlap(intervals: readonly { from_ms: number; to_ms: number }[]): number {
  const edges: [number, number][] = [];
  for (const { from_ms, to_ms } of intervals) {
    if (to_ms <= from_ms) continue;
    edges.push([from_ms, 1], [to_ms, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, delta] of edges) {
    open += delta;
    max = Math.max(max, open);
  }
  return max;
}
