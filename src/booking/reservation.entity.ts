import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

export const RESERVATION_STATUSES = ["HELD", "CONFIRMED", "CANCELLED", "EXPIRED"] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/** A reservation in one of these states owns its seat. */
const LIVE = `status in ('HELD', 'CONFIRMED')`;

export const Reservation = defineEntity({
  name: "Reservation",
  properties: {
    id: p.uuid().primary(),
    scheduleId: p.uuid(),
    seatId: p.uuid(),
    userId: p.text(),
    status: p.enum(RESERVATION_STATUSES),
    priceMinor: p.bigint(),
    requestId: p.text(),
    expireTime: p.datetime(),
    createdAt: p.datetime().defaultRaw("now()"),
    confirmedAt: p.datetime().nullable(),
    cancelledAt: p.datetime().nullable(),
  },
  uniques: [
    // The last line of defence against double booking, whatever the application code does.
    { name: "reservation_live_seat_uq", properties: ["seatId"], where: LIVE },
    // Makes a retried reserve call with the same request id a no-op.
    { name: "reservation_user_request_uq", properties: ["userId", "requestId"] },
  ],
  indexes: [
    { name: "reservation_user_live_idx", properties: ["userId", "scheduleId"], where: LIVE },
    { name: "reservation_held_expire_idx", properties: ["expireTime"], where: `status = 'HELD'` },
  ],
});

export type Reservation = InferEntity<typeof Reservation>;
