// The sale gate: whether a schedule's seats may be held or paid now. A seat may be held only
// while its schedule is PUBLISHED and inside its sale window; a hold may be paid while the
// schedule is PUBLISHED, also after the window closed (the hold was taken inside it, and its own
// end bounds how late that can be). A CANCELLED schedule is never charged.
//
// Exact against a concurrent change of state or window without locking the schedule row (every
// hold and payment of a popular schedule would queue on it): holds and payments take a shared
// advisory lock on the schedule in an earlier statement of their transaction than the one that
// reads the schedule; UpdateSchedule takes the exclusive form before it changes it. A hold or
// payment that got the shared lock first commits before the change can (so the cancel's sweep,
// which starts after the change commits, finds its reservation); one that gets it after the
// change committed reads the new state, since in READ COMMITTED each statement sees what was
// committed when it began.

import { LockMode, raw, sql } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { compileQuery } from "../platform/db/compiled-query.js";
import { DomainError } from "../platform/domain-error.js";
import type { LockedSeat, ReservationRow } from "./reservation-rows.js";
import { Reservation } from "./reservation.entity.js";
import type { ScheduleState } from "./schedule.entity.js";
import { Seat } from "./seat.entity.js";

/** Namespace of the schedule sale locks (two-int4 advisory locks, apart from the seat-limit ones). */
export const SALE_LOCK_CLASS = 0x5a1e;

/** The advisory lock key of a schedule, as SQL over a uuid-valued expression. */
const saleLockKey = (scheduleIdSql: string) => `${SALE_LOCK_CLASS}, hashtext((${scheduleIdSql})::uuid::text)`;

/** SQL taking the shared sale lock of the schedule whose id is bound to the `?`: for holds. */
export const SHARED_SALE_LOCK_SQL = `pg_advisory_xact_lock_shared(${saleLockKey("?")})`;

/** Waits until no hold or payment of the schedule is in flight, and keeps new ones out until commit. */
export async function lockScheduleSale(em: EntityManager, scheduleId: string): Promise<void> {
  await em.execute(`select pg_advisory_xact_lock(${saleLockKey("?")})`, [scheduleId]);
}

export interface ScheduleSale {
  state: ScheduleState;
  saleOpensAt: Date | null;
  /** The window's close, or the performance's start where the schedule sets none. */
  saleClosesAt: Date | null;
}

/** A locked seat and its schedule's sale as they stand under the sale lock. */
export type SeatOnSale = LockedSeat & { sale: ScheduleSale };

export const asDate = (value: Date | string | null): Date | null =>
  value === null ? null : value instanceof Date ? value : new Date(value);

/** A row of seatOnSaleQuery, as the driver returns it. */
export type SeatOnSaleRow = Omit<LockedSeat, "priceMinor"> & {
  priceMinor: string;
  scheduleState: ScheduleState;
  saleOpensAt: Date | string | null;
  saleClosesAt: Date | string | null;
};

/**
 * SELECT … FOR UPDATE OF the seat row only, with its schedule's state and window read in the
 * same statement: no extra round trip, and the schedule row stays unlocked. A caller may join and
 * select more (nothing else is locked). Needs a transaction that already holds the schedule's
 * shared sale lock.
 */
export function seatOnSaleQuery(em: EntityManager, seatId: string) {
  return em
    .createQueryBuilder(Seat, "s")
    .select([
      "scheduleId",
      "status",
      "heldUntil",
      "priceMinor",
      sql.ref("sc.state").as("scheduleState"),
      sql.ref("sc.sale_opens_at").as("saleOpensAt"),
      // A window with no close ends when the performance starts (admin.proto), as the catalog lists it.
      raw(`coalesce(sc.sale_closes_at, sc.start_time) as "saleClosesAt"`),
    ])
    .innerJoin(sql.ref("schedule"), "sc", { "sc.id": sql.ref("s.schedule_id") })
    .where({ id: seatId })
    .setLockMode(LockMode.PESSIMISTIC_WRITE, ["s"]);
}

export function toSeatOnSale(row: SeatOnSaleRow): SeatOnSale {
  const { scheduleId, status, heldUntil, priceMinor, scheduleState, saleOpensAt, saleClosesAt } = row;
  return {
    scheduleId,
    status,
    heldUntil,
    priceMinor: BigInt(priceMinor),
    sale: { state: scheduleState, saleOpensAt: asDate(saleOpensAt), saleClosesAt: asDate(saleClosesAt) },
  };
}

const seatOnSale = compileQuery<{ seatId: string }>(["seatId"], (em, p) => seatOnSaleQuery(em, p.seatId).limit(1));

/** Locks the seat (seatOnSaleQuery, compiled once); null when it does not exist. */
export async function lockSeatOnSale(em: EntityManager, seatId: string): Promise<SeatOnSale | null> {
  const row = await seatOnSale.get<SeatOnSaleRow>(em, { seatId });
  return row ? toSeatOnSale(row) : null;
}

/**
 * The reservation by id, taking its schedule's shared sale lock in the same statement (the
 * payment's first read, so the lock costs no round trip).
 */
const reservationUnderSaleLock = compileQuery<{ id: string }>(["id"], (em, p) =>
  em
    .createQueryBuilder(Reservation)
    .select(["*", raw(`pg_advisory_xact_lock_shared(${saleLockKey("schedule_id")})::text as sale_lock`)])
    .where({ id: p.id })
    .limit(1),
);

export async function findReservationUnderSaleLock(
  em: EntityManager,
  reservationId: string,
): Promise<ReservationRow | undefined> {
  return reservationUnderSaleLock.get<ReservationRow>(em, { id: reservationId });
}

const notOnSale = (scheduleId: string, state: ScheduleState) =>
  new DomainError("SCHEDULE_NOT_ON_SALE", `schedule ${scheduleId} is ${state.toLowerCase()}, not on sale`, [], {
    schedule_id: scheduleId,
    state,
  });

/** Why a seat of the schedule cannot be held at `now`, or undefined when it can. */
export function holdRefusal(scheduleId: string, sale: ScheduleSale, now: Date): DomainError | undefined {
  if (sale.state !== "PUBLISHED") return notOnSale(scheduleId, sale.state);
  if (sale.saleOpensAt && now < sale.saleOpensAt) {
    const opens = sale.saleOpensAt.toISOString();
    return new DomainError("SALE_NOT_OPEN", `the sale of schedule ${scheduleId} opens at ${opens}`, [], {
      schedule_id: scheduleId,
      sale_opens_at: opens,
    });
  }
  if (sale.saleClosesAt && now >= sale.saleClosesAt) {
    const closes = sale.saleClosesAt.toISOString();
    return new DomainError("SALE_CLOSED", `the sale of schedule ${scheduleId} closed at ${closes}`, [], {
      schedule_id: scheduleId,
      sale_closes_at: closes,
    });
  }
  return undefined;
}

/** Why a hold of the schedule cannot be paid, or undefined when it can: the window does not matter here. */
export function paymentRefusal(scheduleId: string, sale: ScheduleSale): DomainError | undefined {
  return sale.state === "PUBLISHED" ? undefined : notOnSale(scheduleId, sale.state);
}
