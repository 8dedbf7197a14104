// Seat holds: reserve, read and cancel. A hold is one transaction that locks the seat row
// (SELECT … FOR UPDATE), checks it is free and its schedule on sale (sale-gate.ts), inserts a HELD reservation and marks the seat HELD.
// The partial unique index reservation_live_seat_uq backs the lock: if the application ever got
// it wrong, the database still refuses a second live reservation, and that maps to
// SEAT_UNAVAILABLE like any lost race.

import { UniqueConstraintViolationException } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { randomUUID } from "node:crypto";
import { systemClock, type Clock } from "../platform/clock.js";
import { compileQuery, dataModifying, insertBuilder } from "../platform/db/compiled-query.js";
import type { CallBound } from "../platform/db/call-bound.js";
import type { GroupCommit } from "../platform/db/group-commit.js";
import { inCallTransaction, withOptimisticRetry } from "../platform/db/optimistic-retry.js";
import type { ORM } from "../platform/db/orm.js";
import { DomainError } from "../platform/domain-error.js";
import {
  expireHeldReservation,
  findOwnReservation,
  lockSeat,
  setSeatStatus,
  toReservationView,
  updateReservations,
  visibleReservationStatus,
  type AuthorizeReservation,
  type ReservationRow,
  type ReservationView,
} from "./reservation-rows.js";
import { Reservation } from "./reservation.entity.js";
import { holdRefusal, lockSeatOnSale, SHARED_SALE_LOCK_SQL } from "./sale-gate.js";
import { Seat } from "./seat.entity.js";

export interface HoldPolicy {
  holdSeconds: number;
  /** Live (HELD unexpired or CONFIRMED) reservations a user may have per schedule. */
  maxSeatsPerUser: number;
}

export interface ReserveSeatInput {
  scheduleId: string;
  seatId: string;
  userId: string;
  /** Client-chosen; a retry with the same id returns the first reservation. */
  requestId: string;
}

/** Namespace of the (user, schedule) advisory locks; the two-int4 form keeps them apart from any bigint-keyed lock. */
const SEAT_LIMIT_LOCK_CLASS = 0x5ea7;

/** The user's reservation made with this request id, and their live ones in the schedule. */
const userReservations = compileQuery<{ userId: string; requestId: string; scheduleId: string }>(
  ["userId", "requestId", "scheduleId"],
  (em, p) =>
    em
      .createQueryBuilder(Reservation)
      .select("*")
      .where({
        userId: p.userId,
        $or: [{ requestId: p.requestId }, { scheduleId: p.scheduleId, status: { $in: ["HELD", "CONFIRMED"] } }],
      }),
);

type HoldRow = Omit<ReservationView, "status" | "confirmedAt"> & { requestId: string };

const HOLD_FIELDS = [
  "id",
  "scheduleId",
  "seatId",
  "userId",
  "priceMinor",
  "createdAt",
  "expireTime",
  "requestId",
] as const;

/** Inserts the HELD reservation and marks its (locked) seat HELD until the hold's end: one statement, one round trip. */
const insertHold = compileQuery<HoldRow>(HOLD_FIELDS, (em, p) =>
  em
    .createQueryBuilder(Seat)
    .update({ status: "HELD", heldUntil: p.expireTime })
    .where({ id: p.seatId })
    .with("hold", dataModifying(insertBuilder<HoldRow>(Reservation, HOLD_FIELDS, { status: "HELD" })(em, p))),
);

const seatUnavailable = (seatId: string) =>
  new DomainError("SEAT_UNAVAILABLE", `seat ${seatId} is held or sold`, [], { seat_id: seatId });

/**
 * The first result of a request id: the reservation as the hold created it (HELD until its
 * expire time), whatever became of it since, which GetReservation tells.
 */
function replayHold(earlier: ReservationView, input: ReserveSeatInput): ReservationView {
  if (earlier.seatId !== input.seatId || earlier.scheduleId !== input.scheduleId) {
    throw new DomainError(
      "IDEMPOTENCY_KEY_REUSED",
      `request id ${input.requestId} was used before for another seat`,
      [],
      { request_id: input.requestId },
    );
  }
  return { ...earlier, status: "HELD", confirmedAt: null };
}

const isLive = (r: Pick<ReservationView, "status" | "expireTime">, now: Date) =>
  r.status === "CONFIRMED" || (r.status === "HELD" && r.expireTime > now);

/** One attempt of a hold inside `em`'s transaction; refuses (DomainError) only before its first write. */
async function holdInTransaction(
  em: EntityManager,
  input: ReserveSeatInput,
  policy: HoldPolicy,
  now: Date,
): Promise<ReservationView> {
  const { scheduleId, seatId, userId, requestId } = input;
  // The user's lock in this schedule serializes their holds here, so two concurrent holds
  // cannot both pass the limit check below; then the schedule's shared sale lock
  // (sale-gate.ts), which a change of its state or window waits for. Both taken before the
  // seat lock, and never while holding one. In the same round trip (with BEGIN), a statement
  // of its own that sees what was committed before the locks were granted answers both
  // "did this request run before?" and "how many seats does the user have here?".
  const locks = {
    sql: `select pg_advisory_xact_lock(?, hashtext(?)), ${SHARED_SALE_LOCK_SQL}`,
    params: [SEAT_LIMIT_LOCK_CLASS, `${userId} ${scheduleId}`, scheduleId],
  };
  const mine = await userReservations.allAfter<ReservationRow>(em, locks, { userId, requestId, scheduleId });
  const earlier = mine.find((r) => r.requestId === requestId);
  if (earlier) return replayHold(toReservationView(earlier), input);
  if (mine.filter((r) => isLive(r, now)).length >= policy.maxSeatsPerUser) {
    throw new DomainError(
      "SEAT_LIMIT_REACHED",
      `a user may hold or buy at most ${policy.maxSeatsPerUser} seats per schedule`,
      [],
      {
        max_seats_per_user: String(policy.maxSeatsPerUser),
      },
    );
  }

  // A later statement than the sale lock's: it sees any change of the sale committed before that lock was granted.
  const seat = await lockSeatOnSale(em, seatId);
  if (!seat || seat.scheduleId !== scheduleId) {
    throw new DomainError("SEAT_NOT_FOUND", `seat ${seatId} does not exist in schedule ${scheduleId}`, [], {
      seat_id: seatId,
      schedule_id: scheduleId,
    });
  }
  const refusal = holdRefusal(scheduleId, seat.sale, now);
  if (refusal) throw refusal;
  if (seat.status === "RESERVED" || (seat.status === "HELD" && seat.heldUntil && seat.heldUntil > now))
    throw seatUnavailable(seatId);
  if (seat.status === "HELD") {
    // Lazy expiry: the sweeper has not reached this hold yet.
    await updateReservations(em, { seatId, status: "HELD" }, { status: "EXPIRED" });
  }
  const reservation: ReservationView = {
    id: randomUUID(),
    scheduleId,
    seatId,
    userId,
    status: "HELD",
    priceMinor: seat.priceMinor,
    createdAt: now,
    expireTime: new Date(now.getTime() + policy.holdSeconds * 1000),
    confirmedAt: null,
  };
  await insertHold.run(em, { ...reservation, requestId });
  return reservation;
}

/**
 * Holds the seat. With `group`, the hold shares a transaction with concurrent holds, top-ups and
 * payments (group-commit.ts); never with another call of the same user or for the same seat.
 */
export async function reserveSeat(
  orm: ORM,
  input: ReserveSeatInput,
  policy: HoldPolicy,
  clock: Clock = systemClock,
  bound?: CallBound,
  group?: GroupCommit,
): Promise<ReservationView> {
  const { seatId, userId, requestId } = input;
  const now = clock();
  const alone = () => inCallTransaction(orm, (em) => holdInTransaction(em, input, policy, now), bound);
  try {
    return await (group
      ? group.run({
          keys: [`user:${userId}`, `seat:${seatId}`],
          work: (em) => holdInTransaction(em, input, policy, now),
          alone,
          bound,
        })
      : alone());
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    const constraint = (error as { constraint?: string }).constraint;
    if (constraint === "reservation_live_seat_uq") throw seatUnavailable(seatId);
    if (constraint !== "reservation_user_request_uq") throw error;
    // The same request id raced in from another schedule (another advisory lock); the winner is committed now.
    const earlier = await orm.em
      .fork()
      .createQueryBuilder(Reservation)
      .select("*")
      .where({ userId, requestId })
      .execute<ReservationRow>("get");
    return replayHold(toReservationView(earlier), input);
  }
}

/** The caller's reservation as it stands; a HELD one past its hold reads as EXPIRED. */
export async function getReservation(
  em: EntityManager,
  reservationId: string,
  userId: string,
  clock: Clock = systemClock,
): Promise<ReservationView> {
  const reservation = await findOwnReservation(em, reservationId, userId);
  return { ...reservation, status: visibleReservationStatus(reservation, clock()) };
}

export interface CancelInput {
  reservationId: string;
  userId: string;
}

/**
 * Credits a CONFIRMED reservation's price back to its owner, inside the cancelling transaction
 * (after the seat lock and the cancel), and flushes. The wallet implements it; app.ts wires it in.
 * A version conflict of its flush is retried with the whole transaction.
 */
export type RefundPaidReservation = (em: EntityManager, reservation: ReservationView, now: Date) => Promise<void>;

export interface CancelOptions {
  /** Needed only to cancel a paid reservation. */
  refund?: RefundPaidReservation;
  /** Checked on the reservation as first read, before any lock is taken. */
  authorize?: AuthorizeReservation;
  /** The call it is done for: no attempt begins or commits once it is over. */
  bound?: CallBound;
}

/**
 * Cancels the caller's reservation and frees its seat at once. A CONFIRMED reservation is
 * refunded in the same transaction. Cancelling a cancelled or expired reservation changes
 * nothing and returns it as it is, so a retried cancel succeeds.
 */
export async function cancelReservation(
  orm: ORM,
  input: CancelInput,
  { refund, authorize, bound }: CancelOptions = {},
): Promise<ReservationView> {
  // The refund's wallet update is versioned, hence the optimistic retry around the whole transaction.
  return withOptimisticRetry(
    orm,
    async (em) => {
      const now = new Date();
      const seen = await findOwnReservation(em, input.reservationId, input.userId);
      await authorize?.(seen, em);
      await lockSeat(em, seen.seatId);
      const current = await findOwnReservation(em, input.reservationId, input.userId);
      const status = visibleReservationStatus(current, now);
      if (status === "CANCELLED") return current;
      if (status === "EXPIRED") {
        if (current.status === "HELD") await expireHeldReservation(em, current);
        return { ...current, status };
      }
      await updateReservations(em, { id: current.id }, { status: "CANCELLED", cancelledAt: now });
      await setSeatStatus(em, current.seatId, "AVAILABLE");
      // The wallet comes last, as in every transaction that touches it.
      if (status === "CONFIRMED") {
        // Throwing rolls the cancel back: a paid seat is never freed without its refund.
        if (!refund) throw new Error(`reservation ${current.id} is paid, and no refund was given to cancel it`);
        await refund(em, current, now);
      }
      return { ...current, status: "CANCELLED" };
    },
    bound,
  );
}

const liveHoldSchedules = compileQuery<{ userId: string; now: Date }>(["userId", "now"], (em, p) =>
  em
    .createQueryBuilder(Reservation)
    .select("scheduleId")
    .where({ userId: p.userId, status: "HELD", expireTime: { $gt: p.now } }),
);

/** The schedules in which the user holds an unexpired seat. */
export async function liveHoldScheduleIds(em: EntityManager, userId: string): Promise<string[]> {
  const held = await liveHoldSchedules.all<{ scheduleId: string }>(em, { userId, now: new Date() });
  return held.map(({ scheduleId }) => scheduleId);
}
