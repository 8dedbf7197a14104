// The audit's verdicts: the shape of one check, and the two that take more than one comparison
// (payment events against payments, the admission cap against the replayed admissions).
// audit.ts gathers the evidence.

import { maxOverlap, type StreamEvidence } from "./audit-sources.js";

export type CheckStatus = "pass" | "fail" | "not verifiable";

export interface AuditCheck {
  name: string;
  status: CheckStatus;
  detail: string;
}

export type Row = Record<string, string | number | boolean | null>;

export const check = (name: string, ok: boolean, detail: string): AuditCheck => ({
  name,
  status: ok ? "pass" : "fail",
  detail,
});

export interface EventEvidence {
  outbox: { event_id: string; aggregate_id: string; published: boolean }[];
  stream?: StreamEvidence;
  streamError?: string;
}

/** What the cap check needs of the run beyond the replayed admissions (an AuditInput has it). */
export interface CapEvidence {
  /** The server's MAX_ACTIVE_USERS. */
  cap: number;
  activatedUsers: number;
  clientActiveSpans: readonly { from_ms: number; to_ms: number }[];
  serverMaxActiveSampled?: number;
}

export function eventCheck(events: EventEvidence, payments: number): AuditCheck {
  const name = "distinct payment.completed events in the stream = payments";
  if (!events.stream)
    return { name, status: "not verifiable", detail: `the Redis stream could not be read: ${events.streamError}` };
  const { distinctEventIds, distinctReservations, entries, unknownEventIds } = events.stream;
  const unpublished = events.outbox.filter((row) => !row.published).length;
  return check(
    name,
    distinctEventIds === payments &&
      distinctReservations === payments &&
      events.outbox.length === payments &&
      unknownEventIds === 0,
    `${distinctEventIds} distinct event ids for ${distinctReservations} reservations in ${entries} stream entries ` +
      `(${entries - distinctEventIds} redeliveries); outbox ${events.outbox.length} rows, ${unpublished} unpublished; ` +
      `${unknownEventIds} stream event ids not in the outbox; ${payments} payments`,
  );
}

/**
 * Replays admissions from queue_entry: PostgreSQL records each admission (and each release before
 * it) as it decides it, so the sweep is exact. Were a release's timestamp ever to lag the moment
 * the slot was freed, a replacement admitted right after it could
 * appear to overlap it; a sweep above the cap is therefore a proven violation only when the
 * client-observed spans (sub-intervals of the true ones) exceed it too, and "not verifiable"
 * otherwise.
 */
export function capCheck(intervals: { from_ms: number; to_ms: number }[], rows: Row, input: CapEvidence): AuditCheck {
  const name = "concurrently active users never above the cap";
  const { cap } = input;
  const withAdmission = Number(rows.with_admission ?? 0);
  if (intervals.length === 0 || withAdmission === 0) {
    return {
      name,
      status: "not verifiable",
      detail: `queue_entry holds no admission times for this run (${Number(rows.tokens ?? 0)} tokens)`,
    };
  }
  const fromDatabase = maxOverlap(intervals);
  const lowerBound = maxOverlap(input.clientActiveSpans);
  const sampled =
    input.serverMaxActiveSampled === undefined
      ? ""
      : `; largest active set sampled in Redis ${input.serverMaxActiveSampled}`;
  const evidence = `queue_entry sweep (admitted_at … ended_at/active_expire_at, ${intervals.length} admissions) ${fromDatabase}; client-observed lower bound ${lowerBound}${sampled}; cap ${cap}`;
  if (lowerBound > cap)
    return { name, status: "fail", detail: `${evidence}: users proven active at once beyond the cap` };
  const missing = input.activatedUsers - withAdmission;
  if (missing > 0) {
    return {
      name,
      status: "not verifiable",
      detail: `${evidence}: ${missing} of the ${input.activatedUsers} admitted users have no admitted_at in queue_entry, so the sweep misses their intervals`,
    };
  }
  if (fromDatabase <= cap) return { name, status: "pass", detail: evidence };
  return {
    name,
    status: "not verifiable",
    detail: `${evidence}: the sweep exceeds the cap but the client-observed lower bound does not; if queue_entry's timestamps lag the Redis changes, such overlaps cannot be told from a violation`,
  };
}
