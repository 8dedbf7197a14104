import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const Outbox = defineEntity({
  name: "Outbox",
  properties: {
    // Monotonic, so the relay publishes in commit-ish order by scanning ids.
    id: p.bigint("string").primary().autoincrement(),
    // Consumers deduplicate on this; the relay may publish an event more than once.
    eventId: p.uuid().unique("outbox_event_id_uq"),
    aggregateType: p.text(),
    aggregateId: p.text(),
    eventType: p.text(),
    payload: p.json<Record<string, unknown>>(),
    createdAt: p.datetime().defaultRaw("now()"),
    publishedAt: p.datetime().nullable(),
  },
  indexes: [
    // Keeps the relay's "next unpublished batch" scan proportional to the backlog, not the history.
    { name: "outbox_unpublished_idx", properties: ["id"], where: "published_at is null" },
    // The events of one aggregate: the relay's per-aggregate order check, and anyone tracing a
    // reservation's events. Without it both fall back to scanning, and on a young table whose
    // statistics still say "empty" the planner picks a nested loop over two sequential scans.
    { name: "outbox_aggregate_idx", properties: ["aggregateType", "aggregateId", "id"] },
  ],
});

export type Outbox = InferEntity<typeof Outbox>;
