// BookingService over the generated types: each method decodes and validates its request, calls
// its booking command and encodes the result; its queue-token requirement is declared beside it.
// Shared by the grpc-js and connect-node transports.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { encodePageToken, readPage } from "../platform/pagination.js";
import { callBoundOf } from "../platform/rpc/handler-bound.js";
import type { MethodTable } from "../platform/rpc/method-table.js";
import { check, isInt4, isUuid } from "../platform/validation.js";
import { createAdmissionReader } from "./admission.js";
import { createBookingCommands, type BookingCommandDeps } from "./booking-commands.js";
import { reservationToProto, seatToProto } from "./booking-proto.js";
import { isScheduleKey } from "./catalog.js";

export type BookingDeps = BookingCommandDeps;

export function createBookingHandlers(deps: BookingDeps): MethodTable<typeof BookingService> {
  const booking = createBookingCommands(deps);
  const admissionOf = createAdmissionReader(deps.orm);
  return {
    listConcerts: {
      token: "none",
      async handle(request) {
        const checker = check();
        const page = readPage(checker, request, { filter: "concerts", defaultSize: 50, maxSize: 500, isKey: isUuid });
        checker.throwIfInvalid();
        const { items, hasMore } = await booking.listConcerts(page);
        return {
          concerts: items.map(({ id, title, artist, venue }) => ({ id, title, artist, venue })),
          nextPageToken: hasMore ? encodePageToken("concerts", items.at(-1)!.id) : "",
        };
      },
    },

    listSchedules: {
      token: "active",
      async handle(request, context) {
        const checker = check().uuid("concert_id", request.concertId);
        const filter = `schedules:${request.concertId}`;
        const page = readPage(checker, request, { filter, defaultSize: 50, maxSize: 500, isKey: isScheduleKey });
        checker.throwIfInvalid();
        const { items, hasMore } = await booking.listSchedules(request.concertId, page, admissionOf(context));
        const last = items.at(-1)?.schedule;
        return {
          schedules: items.map(({ schedule, availableSeats }) => ({
            id: schedule.id,
            concertId: schedule.concertId,
            startTime: timestampFromDate(schedule.startTime),
            totalSeats: BigInt(schedule.totalSeats),
            availableSeats: BigInt(availableSeats),
          })),
          nextPageToken: hasMore && last ? encodePageToken(filter, [last.startTime.toISOString(), last.id]) : "",
        };
      },
    },

    listSeats: {
      token: "active",
      async handle(request, context) {
        const checker = check().uuid("schedule_id", request.scheduleId);
        const filter = `seats:${request.scheduleId}`;
        const page = readPage(checker, request, { filter, defaultSize: 100, maxSize: 1000, isKey: isInt4 });
        checker.throwIfInvalid();
        const { items, hasMore } = await booking.listSeats(request.scheduleId, page, admissionOf(context));
        const now = new Date();
        return {
          seats: items.map((seat) => seatToProto(seat, now)),
          nextPageToken: hasMore ? encodePageToken(filter, items.at(-1)!.seatNo) : "",
        };
      },
    },

    reserveSeat: {
      token: "active",
      async handle(request, context) {
        check()
          .uuid("schedule_id", request.scheduleId)
          .uuid("seat_id", request.seatId)
          .userId("user_id", request.userId)
          .key("request_id", request.requestId)
          .throwIfInvalid();
        const reservation = await booking.reserveSeat(request, admissionOf(context), callBoundOf(context));
        // As at the hold's creation: a retry with the same request id gets the first result
        // (HELD until its expire time) even after the hold ran out.
        return { reservation: reservationToProto(reservation, reservation.createdAt) };
      },
    },

    getReservation: {
      token: "active",
      async handle(request, context) {
        check().uuid("reservation_id", request.reservationId).throwIfInvalid();
        const reservation = await booking.getReservation(request.reservationId, admissionOf(context));
        return { reservation: reservationToProto(reservation, new Date()) };
      },
    },

    cancelReservation: {
      token: "active",
      async handle(request, context) {
        check().uuid("reservation_id", request.reservationId).userId("user_id", request.userId).throwIfInvalid();
        const reservation = await booking.cancelReservation(request, admissionOf(context), callBoundOf(context));
        return { reservation: reservationToProto(reservation, new Date()) };
      },
    },
  };
}
