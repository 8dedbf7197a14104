// Reads and locks shared by every writer of reservations: hold, cancel, pay and the sweeper.
// They all lock rows in one order — seat row, then reservation row, then wallet row — and a
// reservation row is only ever changed while its seat row is locked. So once a writer holds the
// seat lock, a fresh read of the reservation is authoritative, and no two writers can deadlock.
//
// The hot-path statements go through the query builder and reads come back as plain rows rather
// than entities: nothing here is ever flushed, and skipping hydration and the identity map costs a
// third to a half less CPU per statement than em.find/em.findOne/em.nativeUpdate (measured for
// bench/booking-bench.ts). Plain rows carry raw column values: bigint columns arrive as strings
// and are converted here.

import { LockMode, type FilterObject } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { compileQuery } from "../platform/db/compiled-query.js";
import { DomainError } from "../platform/domain-error.js";
import { Reservation, type ReservationStatus } from "./reservation.entity.js";
import { Seat, type SeatStatus } from "./seat.entity.js";

export interface ReservationView {
  id: string;
  scheduleId: string;
  seatId: string;
  userId: string;
  status: ReservationStatus;
  priceMinor: bigint;
  createdAt: Date;
  expireTime: Date;
  confirmedAt: Date | null;
}

/** A reservation row as the query builder returns it. */
export type ReservationRow = Omit<ReservationView, "priceMinor"> & { priceMinor: string | bigint; requestId: string };

export interface LockedSeat {
  scheduleId: string;
  status: SeatStatus;
  heldUntil: Date | null;
  priceMinor: bigint;
}

/**
 * Lets a caller veto access to a reservation once it is known, e.g. a queue token of another
 * concert. It runs inside the transaction and must query through `em`: a second pool connection
 * per open transaction starves the pool under load (every transaction waiting for a connection
 * that only another waiting transaction could give back).
 */
export type AuthorizeReservation = (reservation: ReservationView, em: EntityManager) => Promise<void> | void;

export function toReservationView(row: ReservationRow): ReservationView {
  const { id, scheduleId, seatId, userId, status, priceMinor, createdAt, expireTime, confirmedAt } = row;
  return {
    id,
    scheduleId,
    seatId,
    userId,
    status,
    priceMinor: BigInt(priceMinor),
    createdAt,
    expireTime,
    confirmedAt: confirmedAt ?? null,
  };
}

/** The status a caller should see at `now`: a HELD reservation past its hold is EXPIRED. */
export function visibleReservationStatus(
  reservation: Pick<ReservationView, "status" | "expireTime">,
  now: Date,
): ReservationStatus {
  return reservation.status === "HELD" && reservation.expireTime <= now ? "EXPIRED" : reservation.status;
}

const reservationById = compileQuery<{ id: string }>(["id"], (em, p) =>
  em.createQueryBuilder(Reservation).select("*").where({ id: p.id }).limit(1),
);

export async function findReservation(em: EntityManager, reservationId: string): Promise<ReservationView | null> {
  const row = await reservationById.get<ReservationRow>(em, { id: reservationId });
  return row ? toReservationView(row) : null;
}

/**
 * The caller's reservation, or RESERVATION_NOT_FOUND. Someone else's reservation is reported
 * as not found rather than forbidden, so ids cannot be probed.
 */
export async function findOwnReservation(
  em: EntityManager,
  reservationId: string,
  userId: string,
): Promise<ReservationView> {
  const reservation = await findReservation(em, reservationId);
  if (reservation?.userId !== userId) throw reservationNotFound(reservationId);
  return reservation;
}

export function reservationNotFound(reservationId: string): DomainError {
  return new DomainError("RESERVATION_NOT_FOUND", `reservation ${reservationId} does not exist`, [], {
    reservation_id: reservationId,
  });
}

/** SELECT … FOR UPDATE on the seat row; needs a transaction. Null when the seat does not exist. */
export async function lockSeat(em: EntityManager, seatId: string): Promise<LockedSeat | null> {
  const row = await em
    .createQueryBuilder(Seat)
    .select(["scheduleId", "status", "heldUntil", "priceMinor"])
    .where({ id: seatId })
    .setLockMode(LockMode.PESSIMISTIC_WRITE)
    .execute<(Omit<LockedSeat, "priceMinor"> & { priceMinor: string }) | undefined>("get");
  return row ? { ...row, priceMinor: BigInt(row.priceMinor) } : null;
}

const updateSeatStatus = compileQuery<{ id: string; status: SeatStatus; heldUntil: Date | null }>(
  ["id", "status", "heldUntil"],
  (em, p) => em.createQueryBuilder(Seat).update({ status: p.status, heldUntil: p.heldUntil }).where({ id: p.id }),
);

/** Sets a locked seat's status; only HELD seats carry a hold end. */
export async function setSeatStatus(
  em: EntityManager,
  seatId: string,
  status: SeatStatus,
  heldUntil: Date | null = null,
): Promise<void> {
  await updateSeatStatus.run(em, { id: seatId, status, heldUntil });
}

/**
 * Under the seat lock: marks a HELD reservation whose hold has ended EXPIRED and frees its seat,
 * as the sweeper would. From then on nothing can confirm it.
 */
export async function expireHeldReservation(
  em: EntityManager,
  reservation: Pick<ReservationView, "id" | "seatId">,
): Promise<void> {
  await updateReservations(em, { id: reservation.id, status: "HELD" }, { status: "EXPIRED" });
  await setSeatStatus(em, reservation.seatId, "AVAILABLE");
}

type ReservationChanges = Partial<Pick<Reservation, "status" | "confirmedAt" | "cancelledAt">>;

/** Updates reservations matching `where` (a query-builder UPDATE: cheaper than em.nativeUpdate); returns how many changed. */
export async function updateReservations(
  em: EntityManager,
  where: FilterObject<Reservation>,
  changes: ReservationChanges,
): Promise<number> {
  const result = await em
    .createQueryBuilder(Reservation)
    .update(changes)
    .where(where)
    .execute<{ affectedRows: number }>("run");
  return result.affectedRows;
}
