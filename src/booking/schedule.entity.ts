import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const Schedule = defineEntity({
  name: "Schedule",
  properties: {
    id: p.uuid().primary(),
    // A plain column rather than a relation: hot paths never load the concert graph.
    concertId: p.uuid(),
    startTime: p.datetime(),
    totalSeats: p.integer(),
  },
  // Serves "schedules of a concert, by start time" with a stable keyset tiebreaker.
  indexes: [{ name: "schedule_concert_start_idx", properties: ["concertId", "startTime", "id"] }],
});

export type Schedule = InferEntity<typeof Schedule>;
