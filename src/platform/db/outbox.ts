// Write side of the transactional outbox: domain code records an event with the same
// EntityManager (so the same transaction) as the change it describes; the relay
// (outbox-relay.ts) publishes it after commit. A rolled-back change therefore never publishes,
// and a committed one always does, at least once.

import type { EntityManager } from "@mikro-orm/postgresql";
import { randomUUID } from "node:crypto";
import { compileInsert, insertBuilder } from "./compiled-query.js";
import { Outbox } from "./outbox.entity.js";

export interface OutboxEventInput {
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  payload: Record<string, unknown>;
  occurredAt: Date;
}

/** An outbox row as it is inserted. */
export interface OutboxRow {
  eventId: string;
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

const OUTBOX_FIELDS = ["eventId", "eventType", "aggregateType", "aggregateId", "payload", "createdAt"] as const;

/** The INSERT of one outbox row, for a compiled statement that writes the event together with the change it describes. */
export const outboxInsert = insertBuilder<OutboxRow>(Outbox, OUTBOX_FIELDS);

const insertEvent = compileInsert<OutboxRow>(Outbox, OUTBOX_FIELDS);

/** The row of a new event, with its event id (what consumers deduplicate on). */
export function outboxRow(event: OutboxEventInput): OutboxRow {
  return {
    eventId: randomUUID(),
    eventType: event.eventType,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    payload: event.payload,
    createdAt: event.occurredAt,
  };
}

/** Inserts the event and returns its event id. */
export async function recordEvent(em: EntityManager, event: OutboxEventInput): Promise<string> {
  const row = outboxRow(event);
  await insertEvent.run(em, row);
  return row.eventId;
}
