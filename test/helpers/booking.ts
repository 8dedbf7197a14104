// Fixtures for seat-hold, payment and outbox tests: a migrated private database with a small
// catalog for domain-level tests, and row readers shared with the RPC tests.

import type { EntityManager } from "@mikro-orm/postgresql";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { Reservation } from "../../src/booking/reservation.entity.js";
import { Schedule } from "../../src/booking/schedule.entity.js";
import { Seat } from "../../src/booking/seat.entity.js";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, migrateUp, type ORM } from "../../src/platform/db/orm.js";
import { Outbox } from "../../src/platform/db/outbox.entity.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { DomainError } from "../../src/platform/domain-error.js";
import { topUp } from "../../src/wallet/wallet-writes.js";
import { Wallet } from "../../src/wallet/wallet.entity.js";
import type { TestApp } from "./app.js";
import { createTestDatabase } from "./database.js";
import { waitFor } from "./wait.js";

export interface Catalog {
  concertId: string;
  /** Schedules in start order, each with its seat ids in seat order. */
  schedules: { id: string; seatIds: string[] }[];
}

export interface BookingDb {
  orm: ORM;
  /** The private database's URL, for a connection of the test's own. */
  url: string;
  catalog: Catalog;
  stop(): Promise<void>;
}

/** A private database, migrated, with one concert of two schedules of `seats` seats. */
export async function openBookingDb(label: string, seats = 50, poolMax = 16): Promise<BookingDb> {
  const database = await createTestDatabase(label, { migrated: true });
  const { orm } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax });
  try {
    await migrateUp(orm);
    await seedCatalog(orm.em.fork(), { concerts: 1, schedules: 2, seats });
    const catalog = await loadCatalog(orm.em.fork());
    return {
      orm,
      url: database.url,
      catalog,
      async stop() {
        await closeORM(orm);
        await database.drop();
      },
    };
  } catch (error) {
    await closeORM(orm);
    await database.drop();
    throw error;
  }
}

/** The schedules and seats of one concert (the first one seeded when not named). */
export async function loadCatalog(em: EntityManager, concertId?: string): Promise<Catalog> {
  const all = await em.find(Schedule, concertId ? { concertId } : {}, { orderBy: { startTime: "asc" } });
  const result: Catalog = { concertId: concertId ?? all[0]!.concertId, schedules: [] };
  for (const schedule of all.filter((s) => s.concertId === result.concertId)) {
    const seats = await em.find(Seat, { scheduleId: schedule.id }, { orderBy: { seatNo: "asc" }, fields: ["id"] });
    result.schedules.push({ id: schedule.id, seatIds: seats.map((s) => s.id) });
  }
  return result;
}

export const seatRow = (orm: ORM, seatId: string) => orm.em.fork().findOneOrFail(Seat, { id: seatId });
export const reservationRow = (orm: ORM, id: string) => orm.em.fork().findOneOrFail(Reservation, { id });
export const outboxRows = (orm: ORM, aggregateId: string) =>
  orm.em.fork().find(Outbox, { aggregateId }, { orderBy: { id: "asc" } });

/**
 * Ends a hold now, as if its time had run out: its end (the reservation's expire_time and the
 * seat's held_until) moves a second into the past. For tests against a server on the real clock,
 * where a short hold could also end before the test's next call on a busy machine.
 */
export async function endHoldNow(orm: ORM, reservationId: string): Promise<void> {
  const [ended] = await orm.em
    .fork()
    .getConnection()
    .execute<{ n: number }[]>(
      `with ended as (
         update reservation set expire_time = now() - interval '1 second'
         where id = ? and status = 'HELD' returning seat_id, expire_time),
       seat as (update seat s set held_until = e.expire_time from ended e where s.id = e.seat_id)
       select count(*)::int as n from ended`,
      [reservationId],
    );
  if (ended?.n !== 1) throw new Error(`reservation ${reservationId} is not HELD`);
}

export async function fund(orm: ORM, userId: string, amountMinor: bigint): Promise<void> {
  await topUp(orm, userId, amountMinor, `fund-${userId}-${amountMinor}-${Math.random()}`);
}

export async function balanceOf(orm: ORM, userId: string): Promise<bigint> {
  return (await orm.em.fork().findOne(Wallet, { userId }))?.balanceMinor ?? 0n;
}

/** Σ ledger amounts and the number of entries of one user. */
export async function ledgerOf(orm: ORM, userId: string): Promise<{ sum: bigint; rows: number }> {
  const [row] = await orm.em
    .fork()
    .getConnection()
    .execute<{ sum: string | null; rows: string }[]>(
      "select sum(amount_minor) as sum, count(*) as rows from ledger_entry where user_id = ?",
      [userId],
    );
  return { sum: BigInt(row?.sum ?? 0), rows: Number(row?.rows ?? 0) };
}

/** The DomainError reason of a rejection, or "OK"/the error's name, for tallying outcomes. */
export async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "OK";
  } catch (error) {
    return error instanceof DomainError ? error.reason : `BUG ${String(error)}`;
  }
}

export function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

/** Joins the queue of `concertId` for each user and waits until every token is ACTIVE; user → token. */
export async function admitUsers(
  app: TestApp,
  concertId: string,
  userIds: readonly string[],
): Promise<Map<string, string>> {
  const queue = app.grpc(QueueService);
  const tokens = new Map<string, string>();
  for (const userId of userIds) tokens.set(userId, (await queue.joinQueue({ concertId, userId })).token);
  let pending = [...tokens.values()];
  await waitFor(
    async () => {
      const states = await Promise.all(
        pending.map(async (token) => [token, (await queue.getQueueStatus({ token })).status?.state] as const),
      );
      pending = states.filter(([, state]) => state !== QueueState.ACTIVE).map(([token]) => token);
      return pending.length === 0;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: () => `${pending.length} tokens still not ACTIVE` },
  );
  return tokens;
}

/** gRPC call options carrying a queue token. */
export const withToken = (token: string | undefined): { metadata: Record<string, string> } => ({
  metadata: token ? { "x-queue-token": token } : {},
});
