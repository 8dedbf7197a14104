import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/**
 * A process serving the waiting room from PostgreSQL because it cannot use Redis, refreshed every
 * admission tick while that lasts (queue-mode.ts). While any row is fresh, every other process
 * serves from PostgreSQL too: one store for the whole line, so a process cut off from Redis alone
 * neither reorders the line nor lets the two stores admit past the cap between them.
 */
export const QueueFallback = defineEntity({
  name: 'QueueFallback',
  properties: {
    processId: p.text().primary(),
    since: p.datetime(),
    seenAt: p.datetime(),
  },
});

export type QueueFallback = InferEntity<typeof QueueFallback>;
