import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

/**
 * The seed that orders a concert's prequeue (prequeue.ts), committed once a future opening is
 * known: its SHA-256 is published from then on, the seed itself once `opensAt` has passed. The
 * row follows the opening while it is in the future and is never changed after it.
 */
export const PrequeueSeed = defineEntity({
  name: "PrequeueSeed",
  tableName: "prequeue_seed",
  properties: {
    concertId: p.uuid().primary(),
    // 32 random bytes, hex.
    seed: p.text(),
    seedSha256: p.text(),
    opensAt: p.datetime(),
    committedAt: p.datetime().defaultRaw("now()"),
  },
});

export type PrequeueSeed = InferEntity<typeof PrequeueSeed>;
