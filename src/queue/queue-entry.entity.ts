import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const QUEUE_STATES = ["WAITING", "ACTIVE", "EXPIRED"] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export const QueueEntry = defineEntity({
  name: "QueueEntry",
  properties: {
    // 32 hex chars, handed to the client as its queue token.
    token: p.text().primary(),
    concertId: p.uuid(),
    userId: p.text(),
    // FIFO position from Redis INCR; kept so the queue can be rebuilt after a Redis loss.
    seq: p.bigint(),
    state: p.enum(QUEUE_STATES),
    joinedAt: p.datetime().defaultRaw("now()"),
    admittedAt: p.datetime().nullable(),
    activeExpireAt: p.datetime().nullable(),
    endedAt: p.datetime().nullable(),
  },
  uniques: [
    // One live place in line per user and concert.
    { name: "queue_entry_live_user_uq", properties: ["concertId", "userId"], where: `state in ('WAITING', 'ACTIVE')` },
  ],
  indexes: [
    { name: "queue_entry_concert_state_seq_idx", properties: ["concertId", "state", "seq"] },
    // The admission step counts a concert's recent ends (pg-admission.ts).
    { name: "queue_entry_concert_ended_idx", properties: ["concertId", "endedAt"] },
  ],
});

export type QueueEntry = InferEntity<typeof QueueEntry>;
