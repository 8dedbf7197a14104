// Admin views as protobuf messages, and the protobuf inputs the handlers share.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ScheduleState as ScheduleStatePb, type AdminScheduleSchema } from "../../gen/concert/v1/admin_pb.js";
import type { ConcertSchema } from "../../gen/concert/v1/booking_pb.js";
import type { AdminScheduleView } from "../booking/catalog-admin.js";
import type { ConcertView } from "../booking/catalog.js";
import type { ScheduleState } from "../booking/schedule.entity.js";
import { money } from "../platform/money.js";

export function concertToProto(concert: ConcertView): MessageInitShape<typeof ConcertSchema> {
  return { id: concert.id, title: concert.title, artist: concert.artist, venue: concert.venue };
}

const optionalTime = (date: Date | null | undefined) => (date ? timestampFromDate(date) : undefined);

export function scheduleToProto({
  schedule,
  soldSeats,
}: AdminScheduleView): MessageInitShape<typeof AdminScheduleSchema> {
  return {
    id: schedule.id,
    concertId: schedule.concertId,
    startsAt: timestampFromDate(schedule.startTime),
    saleOpensAt: optionalTime(schedule.saleOpensAt),
    saleClosesAt: optionalTime(schedule.saleClosesAt),
    state: ScheduleStatePb[schedule.state as ScheduleState],
    totalSeats: BigInt(schedule.totalSeats),
    soldSeats: BigInt(soldSeats),
    sections: (schedule.sections ?? []).map((s) => ({
      name: s.name,
      grade: s.grade,
      rows: s.rows,
      seatsPerRow: s.seatsPerRow,
      price: money(BigInt(s.priceMinor)),
    })),
    createTime: timestampFromDate(schedule.createdAt),
  };
}

/** Milliseconds as a google.protobuf.Duration. */
export const durationOfMs = (ms: number) => ({
  seconds: BigInt(Math.floor(ms / 1000)),
  nanos: (ms % 1000) * 1_000_000,
});

/** A Timestamp field as a Date; undefined when unset. */
export const dateOf = (timestamp: Timestamp | undefined): Date | undefined =>
  timestamp ? timestampDate(timestamp) : undefined;
