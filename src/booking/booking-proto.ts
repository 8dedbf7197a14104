// Seats and reservations as the API shows them (concert.v1), for the booking and wallet handlers.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ReservationStatus as ReservationStatusPb,
  SeatStatus as SeatStatusPb,
  type ReservationSchema,
  type SeatSchema,
} from "../../gen/concert/v1/booking_pb.js";
import { money } from "../platform/money.js";
import { visibleSeatStatus, type SeatView } from "./catalog.js";
import { visibleReservationStatus, type ReservationView } from "./reservation-rows.js";

export function seatToProto(seat: SeatView, now: Date): MessageInitShape<typeof SeatSchema> {
  return {
    id: seat.id,
    scheduleId: seat.scheduleId,
    label: seat.label,
    grade: seat.grade,
    price: money(seat.priceMinor),
    status: SeatStatusPb[visibleSeatStatus(seat, now)],
  };
}

/** The reservation as it reads at `now`: a HELD one past its hold shows EXPIRED. */
export function reservationToProto(
  reservation: ReservationView,
  now: Date,
): MessageInitShape<typeof ReservationSchema> {
  return {
    id: reservation.id,
    scheduleId: reservation.scheduleId,
    seatId: reservation.seatId,
    userId: reservation.userId,
    status: ReservationStatusPb[visibleReservationStatus(reservation, now)],
    price: money(reservation.priceMinor),
    createTime: timestampFromDate(reservation.createdAt),
    expireTime: timestampFromDate(reservation.expireTime),
    confirmTime: reservation.confirmedAt ? timestampFromDate(reservation.confirmedAt) : undefined,
  };
}
