import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

/**
 * A process serving the waiting room from PostgreSQL, refreshed while that lasts (queue-mode.ts).
 * While a row of a process that Redis failed (`following` false) is fresh, every other process
 * serves from PostgreSQL too: one store for the whole line, so a process cut off from Redis alone
 * neither reorders the line nor lets the two stores admit past the cap between them. Processes
 * that only followed (`following` true) keep a row as well until they are back on Redis: while
 * any row is fresh, processes already back on Redis do not admit, since the others still admit
 * from PostgreSQL and may have taken leaves that Redis has not seen yet.
 */
export const QueueFallback = defineEntity({
  name: "QueueFallback",
  properties: {
    processId: p.text().primary(),
    since: p.datetime(),
    seenAt: p.datetime(),
    following: p.boolean().default(false),
  },
});

export type QueueFallback = InferEntity<typeof QueueFallback>;
