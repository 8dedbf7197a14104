// Booking's use cases as the RPC handlers call them, one function each: first the admission rule
// (the caller's queue token must cover what the call touches), then the catalog read or the hold
// operation. Handlers only decode requests and encode results.

import type { Clock } from "../platform/clock.js";
import type { CallBound } from "../platform/db/call-bound.js";
import type { GroupCommit } from "../platform/db/group-commit.js";
import type { ORM } from "../platform/db/orm.js";
import type { Page } from "../platform/pagination.js";
import type { Admission } from "./admission.js";
import { listConcerts, listSchedules, listSeats, type ScheduleKey } from "./catalog.js";
import {
  cancelReservation,
  getReservation,
  reserveSeat,
  type CancelInput,
  type HoldPolicy,
  type RefundPaidReservation,
  type ReserveSeatInput,
} from "./seat-hold.js";

export interface BookingCommandDeps {
  orm: ORM;
  holdPolicy: HoldPolicy;
  /** The wallet's refund of a paid reservation that is cancelled. */
  refund: RefundPaidReservation;
  /** The time holds are taken at (their end, the sale window); tests step it. */
  clock?: Clock;
  /** Group commit of holds with other booking writes (group-commit.ts); without it each hold commits alone. */
  group?: GroupCommit;
}

export function createBookingCommands({ orm, holdPolicy, refund, clock, group }: BookingCommandDeps) {
  return {
    /** Open to anyone: the front page of a flash crowd, before anyone queues. */
    listConcerts: (page: Page<string>) => listConcerts(orm.em.fork(), page),

    async listSchedules(concertId: string, page: Page<ScheduleKey>, admission: Admission) {
      admission.requireConcert(concertId);
      return listSchedules(orm.em.fork(), concertId, page);
    },

    async listSeats(scheduleId: string, page: Page<number>, admission: Admission) {
      await admission.requireSchedule(scheduleId);
      return listSeats(orm.em.fork(), scheduleId, page);
    },

    async reserveSeat(cmd: ReserveSeatInput, admission: Admission, bound?: CallBound) {
      admission.requireUser(cmd.userId);
      await admission.requireSchedule(cmd.scheduleId);
      return reserveSeat(orm, cmd, holdPolicy, clock, bound, group);
    },

    /** The token's user's own reservation, in the token's concert. */
    async getReservation(reservationId: string, admission: Admission) {
      const reservation = await getReservation(orm.em.fork(), reservationId, admission.token.userId);
      await admission.requireSchedule(reservation.scheduleId);
      return reservation;
    },

    async cancelReservation(cmd: CancelInput, admission: Admission, bound?: CallBound) {
      admission.requireUser(cmd.userId);
      return cancelReservation(orm, cmd, {
        refund,
        bound,
        authorize: ({ scheduleId }, em) => admission.requireSchedule(scheduleId, em),
      });
    },
  };
}
