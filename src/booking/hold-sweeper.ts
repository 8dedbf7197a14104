// Frees seats whose hold ran out without payment. Reads are already correct without it (a HELD
// reservation past its hold reads as EXPIRED and its seat as AVAILABLE, and ReserveSeat expires
// it lazily), but the sweeper keeps seat statuses and availability counts honest in the tables.
// Safe with any number of processes: seats are locked with FOR UPDATE SKIP LOCKED, so two
// sweepers split the work, and a seat that a hold or payment has locked is left for later.

import { LockMode } from "@mikro-orm/core";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../platform/logger.js";
import type { ORM } from "../platform/db/orm.js";
import { startPeriodicTask, type PeriodicTask } from "../platform/periodic-task.js";
import { Reservation } from "./reservation.entity.js";
import { Seat } from "./seat.entity.js";

export interface SweepResult {
  expired: number;
  /** More expired holds may be waiting. */
  more: boolean;
}

/** Expires up to `batchSize` overdue holds in one transaction. */
export async function expireOverdueHolds(orm: ORM, batchSize: number, now = new Date()): Promise<SweepResult> {
  return orm.em.fork().transactional(async (em) => {
    const due = await em.find(
      Reservation,
      { status: "HELD", expireTime: { $lte: now } },
      { fields: ["seatId"], orderBy: { expireTime: "asc" }, limit: batchSize, disableIdentityMap: true },
    );
    if (due.length === 0) return { expired: 0, more: false };
    // Seat first, as every writer does (see reservation-rows.ts).
    const seats = await em.find(
      Seat,
      { id: { $in: due.map((r) => r.seatId) } },
      { fields: ["id"], lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE, disableIdentityMap: true },
    );
    if (seats.length === 0) return { expired: 0, more: false };
    const seatIds = seats.map((s) => s.id);
    // Re-checked under the seat locks: a hold paid, cancelled or replaced meanwhile no longer matches.
    const expired = await em.nativeUpdate(
      Reservation,
      { seatId: { $in: seatIds }, status: "HELD", expireTime: { $lte: now } },
      { status: "EXPIRED" },
    );
    await em.nativeUpdate(
      Seat,
      { id: { $in: seatIds }, status: "HELD", heldUntil: { $lte: now } },
      { status: "AVAILABLE", heldUntil: null },
    );
    return { expired, more: due.length === batchSize };
  });
}

export interface HoldSweeperOptions {
  orm: ORM;
  intervalMs: number;
  batchSize: number;
  logger: Logger;
  registry: Registry;
}

export function startHoldSweeper(options: HoldSweeperOptions): PeriodicTask {
  const { orm, batchSize, logger, registry } = options;
  const swept = new Counter({
    name: "hold_sweeper_expired_total",
    help: "Seat holds this process's sweeper expired after they ran out unpaid",
    registers: [registry],
  });
  const failures = new Counter({
    name: "hold_sweeper_failures_total",
    help: "Sweeper runs that failed (PostgreSQL unavailable)",
    registers: [registry],
  });
  return startPeriodicTask({
    name: "hold-sweeper",
    intervalMs: options.intervalMs,
    logger,
    onFailure: () => failures.inc(),
    run: async () => {
      const { expired, more } = await expireOverdueHolds(orm, batchSize);
      swept.inc(expired);
      if (expired > 0) logger.debug({ expired }, "expired overdue seat holds");
      return more;
    },
  });
}
