import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const SCHEDULE_STATES = ["DRAFT", "PUBLISHED", "CANCELLED"] as const;
export type ScheduleState = (typeof SCHEDULE_STATES)[number];

/** One block of a seat map as CreateSchedule received it: rows × seatsPerRow seats at one price. */
export interface SeatSectionSpec {
  name: string;
  grade: string;
  rows: number;
  seatsPerRow: number;
  priceMinor: string;
}

export const Schedule = defineEntity({
  name: "Schedule",
  properties: {
    id: p.uuid().primary(),
    // A plain column rather than a relation: hot paths never load the concert graph.
    concertId: p.uuid(),
    startTime: p.datetime(),
    totalSeats: p.integer(),
    // Users see only PUBLISHED schedules whose sale is open or coming (catalog.ts).
    state: p.enum(SCHEDULE_STATES).default("PUBLISHED"),
    saleOpensAt: p.datetime().nullable(),
    saleClosesAt: p.datetime().nullable(),
    // The seat map of a schedule created through AdminService; null for seeded ones.
    sections: p.json<SeatSectionSpec[]>().nullable(),
    // AdminService.CreateSchedule's idempotency key and a digest of its arguments.
    requestId: p.text().nullable().unique("schedule_request_id_uq"),
    requestFingerprint: p.text().nullable(),
    createdAt: p.datetime().defaultRaw("now()"),
  },
  // Serves "schedules of a concert, by start time" with a stable keyset tiebreaker.
  indexes: [{ name: "schedule_concert_start_idx", properties: ["concertId", "startTime", "id"] }],
});

export type Schedule = InferEntity<typeof Schedule>;
