import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const SEAT_STATUSES = ["AVAILABLE", "HELD", "RESERVED"] as const;
export type SeatStatus = (typeof SEAT_STATUSES)[number];

export const SEAT_GRADES = ["S", "A", "B"] as const;
export type SeatGrade = (typeof SEAT_GRADES)[number];

export const Seat = defineEntity({
  name: "Seat",
  properties: {
    id: p.uuid().primary(),
    scheduleId: p.uuid(),
    // 1-based position within the schedule; the keyset pagination cursor.
    seatNo: p.integer(),
    label: p.text(),
    grade: p.enum(SEAT_GRADES),
    priceMinor: p.bigint(),
    status: p.enum(SEAT_STATUSES).default("AVAILABLE"),
    heldUntil: p.datetime().nullable(),
  },
  uniques: [{ name: "seat_schedule_seat_no_uq", properties: ["scheduleId", "seatNo"] }],
  indexes: [{ name: "seat_schedule_status_idx", properties: ["scheduleId", "status"] }],
});

export type Seat = InferEntity<typeof Seat>;
