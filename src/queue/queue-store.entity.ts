import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

/**
 * Which store serves the waiting room, for every process: one row (queue-store.ts). `cutOffAt`
 * is refreshed by each process that Redis fails, for as long as that lasts.
 */
export const QueueStoreRow = defineEntity({
  name: "QueueStoreRow",
  tableName: "queue_store",
  properties: {
    id: p.integer().primary().autoincrement(false),
    store: p.text().default("redis"),
    cutOffAt: p.datetime().nullable(),
    cutOffBy: p.text().nullable(),
  },
});

export type QueueStoreRow = InferEntity<typeof QueueStoreRow>;
