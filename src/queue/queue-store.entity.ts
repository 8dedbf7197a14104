import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

/** A token whose row changed on PostgreSQL alone while Redis failed: Redis misses it until filled again (queue-store.ts). */
export const QueueMissedRow = defineEntity({
  name: "QueueMissedRow",
  tableName: "queue_missed",
  properties: { token: p.text().primary() },
});

export type QueueMissedRow = InferEntity<typeof QueueMissedRow>;
