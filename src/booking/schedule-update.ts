// An operator's changes to a schedule: its sale window and its state. Cancelling refunds every
// sold seat through the same path as a user's own cancel (seat lock, cancel, the wallet's refund
// with its ledger entry and payment.refunded event), one reservation per transaction. No hold or
// payment commits on a schedule after its change did without seeing it (sale-gate.ts).

import { LockMode } from "@mikro-orm/core";
import type { ORM } from "../platform/db/orm.js";
import { recordEvent } from "../platform/db/outbox.js";
import { DomainError } from "../platform/domain-error.js";
import { countSoldSeats, type AdminScheduleView } from "./catalog-admin.js";
import { findSchedule } from "./catalog.js";
import { lockScheduleSale } from "./sale-gate.js";
import { Schedule, type ScheduleState } from "./schedule.entity.js";
import { cancelReservation, type RefundPaidReservation } from "./seat-hold.js";

export const SCHEDULE_CANCELLED = "schedule.cancelled";

export interface ScheduleChanges {
  /** null clears the bound; undefined leaves it. */
  saleOpensAt?: Date | null;
  saleClosesAt?: Date | null;
  state?: ScheduleState;
}

const notUpdatable = (scheduleId: string, why: string) =>
  new DomainError("SCHEDULE_NOT_UPDATABLE", `schedule ${scheduleId} ${why}`, [], { schedule_id: scheduleId });

/** The state a schedule may move to from another; CANCELLED is final and may be asked again. */
function checkTransition(schedule: Schedule, to: ScheduleState): void {
  if (to === schedule.state) return;
  if (schedule.state === "CANCELLED") throw notUpdatable(schedule.id, "is cancelled");
  if (to === "DRAFT") throw notUpdatable(schedule.id, "is published and cannot go back to draft");
}

export async function updateSchedule(
  orm: ORM,
  scheduleId: string,
  changes: ScheduleChanges,
  refund: RefundPaidReservation,
): Promise<AdminScheduleView & { refundedSeats: number }> {
  const schedule = await orm.em.fork().transactional(async (em) => {
    await findSchedule(em, scheduleId);
    // Waits for the holds and payments in flight on this schedule and keeps new ones out until
    // this commits: each either commits before the change (and the cancel's sweep below sees its
    // reservation) or reads the changed schedule (sale-gate.ts).
    await lockScheduleSale(em, scheduleId);
    const current = await em.findOneOrFail(
      Schedule,
      { id: scheduleId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, disableIdentityMap: true },
    );
    const windowChanged = changes.saleOpensAt !== undefined || changes.saleClosesAt !== undefined;
    if (windowChanged && current.state === "CANCELLED") throw notUpdatable(scheduleId, "is cancelled");
    if (changes.state) checkTransition(current, changes.state);
    const next = {
      saleOpensAt: changes.saleOpensAt === undefined ? current.saleOpensAt : changes.saleOpensAt,
      saleClosesAt: changes.saleClosesAt === undefined ? current.saleClosesAt : changes.saleClosesAt,
      state: changes.state ?? current.state,
    };
    if (next.saleOpensAt && next.saleClosesAt && next.saleOpensAt >= next.saleClosesAt) {
      throw new DomainError("INVALID_FIELD", "the sale must open before it closes", [
        { field: "sale_closes_at", description: "must be after sale_opens_at" },
      ]);
    }
    await em.nativeUpdate(Schedule, { id: scheduleId }, next);
    if (next.state === "CANCELLED" && current.state !== "CANCELLED") {
      const now = new Date();
      await recordEvent(em, {
        eventType: SCHEDULE_CANCELLED,
        aggregateType: "schedule",
        aggregateId: scheduleId,
        occurredAt: now,
        payload: { schedule_id: scheduleId, concert_id: current.concertId, cancelled_at: now.toISOString() },
      });
    }
    return { ...current, ...next };
  });
  // Also when it was cancelled before: a cancel that stopped half-way (a crash) finishes on retry.
  const refundedSeats = schedule.state === "CANCELLED" ? await cancelLiveReservations(orm, scheduleId, refund) : 0;
  const sold = await countSoldSeats(orm.em.fork(), [scheduleId]);
  return { schedule, soldSeats: sold.get(scheduleId) ?? 0, refundedSeats };
}

/** Cancels every held or paid reservation of the schedule; returns how many paid ones were refunded. */
async function cancelLiveReservations(orm: ORM, scheduleId: string, refund: RefundPaidReservation): Promise<number> {
  const live = await orm.em
    .fork()
    .execute<{ id: string; user_id: string; status: string }[]>(
      `select id, user_id, status from reservation where schedule_id = ? and status in ('HELD', 'CONFIRMED') order by id`,
      [scheduleId],
    );
  let refunded = 0;
  for (const reservation of live) {
    const before = reservation.status;
    const after = await cancelReservation(
      orm,
      { reservationId: reservation.id, userId: reservation.user_id },
      { refund },
    );
    if (before === "CONFIRMED" && after.status === "CANCELLED") refunded++;
  }
  return refunded;
}
