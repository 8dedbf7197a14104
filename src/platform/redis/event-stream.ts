// The Redis Stream the outbox relay publishes domain events to, and its entry format: one
// flat field list per event, the payload as JSON. Publishing is at least once, so readers
// deduplicate on event_id.

export interface StreamEvent {
  eventId: string;
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  /** When the event was recorded (its transaction), ISO 8601. */
  occurredAt: string;
  payload: Record<string, unknown>;
}

export function eventStreamKey(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}concert:events`;
}

export function toStreamFields(event: StreamEvent): string[] {
  return [
    "event_id",
    event.eventId,
    "event_type",
    event.eventType,
    "aggregate_type",
    event.aggregateType,
    "aggregate_id",
    event.aggregateId,
    "occurred_at",
    event.occurredAt,
    "payload",
    JSON.stringify(event.payload),
  ];
}

/** Decodes an entry written by toStreamFields; undefined for entries of another shape. */
export function fromStreamFields(fields: readonly string[]): StreamEvent | undefined {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  const [eventId, eventType, aggregateType, aggregateId, occurredAt, payload] = [
    "event_id",
    "event_type",
    "aggregate_type",
    "aggregate_id",
    "occurred_at",
    "payload",
  ].map((name) => map.get(name));
  if (!eventId || !eventType || !aggregateType || !aggregateId || !occurredAt || payload === undefined)
    return undefined;
  try {
    return {
      eventId,
      eventType,
      aggregateType,
      aggregateId,
      occurredAt,
      payload: JSON.parse(payload) as Record<string, unknown>,
    };
  } catch {
    return undefined;
  }
}
