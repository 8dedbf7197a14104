// Write side of the transactional outbox: domain code records an event with the same
// EntityManager (so the same transaction) as the change it describes; the relay
// (outbox-relay.ts) publishes it after commit. A rolled-back change therefore never publishes,
// and a committed one always does, at least once.

import type { EntityManager } from "@mikro-orm/postgresql";
import { randomUUID } from "node:crypto";
import { compileQuery, insertBuilder } from "./compiled-query.js";
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

const insertEvent = compileQuery<OutboxRow>(OUTBOX_FIELDS, outboxInsert);

/** Inserts the event and returns its event id (what consumers deduplicate on). */
export async function recordEvent(em: EntityManager, event: OutboxEventInput): Promise<string> {
  const eventId = randomUUID();
  await insertEvent.run(em, {
    eventId,
    eventType: event.eventType,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    payload: event.payload,
    createdAt: event.occurredAt,
  });
  return eventId;
}
