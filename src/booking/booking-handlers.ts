// BookingService over the generated types: validation, the queue-token check, then catalog and
// hold operations, then mapping to protobuf. Shared by the grpc-js and connect-node transports.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  BookingService,
  ReservationStatus as ReservationStatusPb,
  SeatStatus as SeatStatusPb,
  type ReservationSchema,
  type SeatSchema,
} from "../../gen/concert/v1/booking_pb.js";
import type { ORM } from "../platform/db/orm.js";
import { encodePageToken, readPage } from "../platform/pagination.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { check, isInt4, isUuid } from "../platform/validation.js";
import { requireAdmitted } from "../queue/admission-context.js";
import { WALLET_CURRENCY } from "../wallet/wallet-ledger.js";
import {
  createConcertOfSchedule,
  listConcerts,
  listSchedules,
  listSeats,
  visibleSeatStatus,
  type ScheduleKey,
  type SeatView,
} from "./catalog.js";
import { visibleReservationStatus, type ReservationView } from "./reservation-rows.js";
import { cancelReservation, getReservation, reserveSeat, type HoldPolicy } from "./seat-hold.js";

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A start time as toISOString writes it (years 0000–9999, which PostgreSQL takes), and a schedule id. */
// Year 0000 parses in JavaScript but PostgreSQL has no year 0: it would refuse the query.
const isScheduleKey = (value: unknown): value is ScheduleKey =>
  Array.isArray(value) &&
  value.length === 2 &&
  typeof value[0] === "string" &&
  ISO_TIME.test(value[0]) &&
  !value[0].startsWith("0000") &&
  !Number.isNaN(Date.parse(value[0])) &&
  isUuid(value[1]);

export function seatToProto(seat: SeatView, now: Date): MessageInitShape<typeof SeatSchema> {
  return {
    id: seat.id,
    scheduleId: seat.scheduleId,
    label: seat.label,
    grade: seat.grade,
    price: { amountMinor: seat.priceMinor, currencyCode: WALLET_CURRENCY },
    status: SeatStatusPb[visibleSeatStatus(seat, now)],
  };
}

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
    price: { amountMinor: reservation.priceMinor, currencyCode: WALLET_CURRENCY },
    createTime: timestampFromDate(reservation.createdAt),
    expireTime: timestampFromDate(reservation.expireTime),
    confirmTime: reservation.confirmedAt ? timestampFromDate(reservation.confirmedAt) : undefined,
  };
}

export interface BookingDeps {
  orm: ORM;
  holdPolicy: HoldPolicy;
}

export function createBookingHandlers(deps: BookingDeps): PartialServiceImpl<typeof BookingService> {
  const { orm, holdPolicy } = deps;
  const concertOf = createConcertOfSchedule(orm);
  return {
    async listConcerts(request) {
      const checker = check();
      const page = readPage(checker, request, { filter: "concerts", defaultSize: 50, maxSize: 500, isKey: isUuid });
      checker.throwIfInvalid();
      const { items, hasMore } = await listConcerts(orm.em.fork(), page);
      return {
        concerts: items.map(({ id, title, artist, venue }) => ({ id, title, artist, venue })),
        nextPageToken: hasMore ? encodePageToken("concerts", items.at(-1)!.id) : "",
      };
    },

    async listSchedules(request, context) {
      const checker = check().uuid("concert_id", request.concertId);
      const filter = `schedules:${request.concertId}`;
      const page = readPage(checker, request, { filter, defaultSize: 50, maxSize: 500, isKey: isScheduleKey });
      checker.throwIfInvalid();
      requireAdmitted(context, { concertId: request.concertId });
      const { items, hasMore } = await listSchedules(orm.em.fork(), request.concertId, page);
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

    async listSeats(request, context) {
      const checker = check().uuid("schedule_id", request.scheduleId);
      const filter = `seats:${request.scheduleId}`;
      const page = readPage(checker, request, { filter, defaultSize: 100, maxSize: 1000, isKey: isInt4 });
      checker.throwIfInvalid();
      requireAdmitted(context, { concertId: await concertOf(request.scheduleId) });
      const { items, hasMore } = await listSeats(orm.em.fork(), request.scheduleId, page);
      const now = new Date();
      return {
        seats: items.map((seat) => seatToProto(seat, now)),
        nextPageToken: hasMore ? encodePageToken(filter, items.at(-1)!.seatNo) : "",
      };
    },

    async reserveSeat(request, context) {
      check()
        .uuid("schedule_id", request.scheduleId)
        .uuid("seat_id", request.seatId)
        .userId("user_id", request.userId)
        .key("request_id", request.requestId)
        .throwIfInvalid();
      requireAdmitted(context, { userId: request.userId });
      requireAdmitted(context, { concertId: await concertOf(request.scheduleId) });
      const reservation = await reserveSeat(orm, request, holdPolicy);
      // As at the hold's creation: a retry with the same request id gets the first result
      // (HELD until its expire time) even after the hold ran out.
      return { reservation: reservationToProto(reservation, reservation.createdAt) };
    },

    async getReservation(request, context) {
      check().uuid("reservation_id", request.reservationId).throwIfInvalid();
      const admitted = requireAdmitted(context, {});
      const reservation = await getReservation(orm.em.fork(), request.reservationId, admitted.userId);
      requireAdmitted(context, { concertId: await concertOf(reservation.scheduleId) });
      return { reservation: reservationToProto(reservation, new Date()) };
    },

    async cancelReservation(request, context) {
      check().uuid("reservation_id", request.reservationId).userId("user_id", request.userId).throwIfInvalid();
      requireAdmitted(context, { userId: request.userId });
      const reservation = await cancelReservation(orm, request, async ({ scheduleId }, em) => {
        requireAdmitted(context, { concertId: await concertOf(scheduleId, em) });
      });
      return { reservation: reservationToProto(reservation, new Date()) };
    },
  };
}
