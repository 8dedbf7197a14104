// Write side of the transactional outbox: domain code records an event with the same
// EntityManager (so the same transaction) as the change it describes; the relay
// (outbox-relay.ts) publishes it after commit. A rolled-back change therefore never publishes,
// and a committed one always does, at least once.

import type { EntityManager } from "@mikro-orm/postgresql";
import { randomUUID } from "node:crypto";
import { compileInsert } from "./compiled-query.js";
import { Outbox } from "./outbox.entity.js";

export interface OutboxEventInput {
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  payload: Record<string, unknown>;
  occurredAt: Date;
}

const insertEvent = compileInsert<{ eventId: string; eventType: string; aggregateType: string; aggregateId: string; payload: Record<string, unknown>; createdAt: Date }>(
  Outbox,
  ["eventId", "eventType", "aggregateType", "aggregateId", "payload", "createdAt"],
);

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
