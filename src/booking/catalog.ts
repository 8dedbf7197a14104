// Read side of the catalog: concerts, schedules with live availability, and seats. A HELD seat
// whose hold has passed counts as available here, before the sweeper gets to it.

import { raw } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { DomainError } from "../platform/domain-error.js";
import type { Page } from "../platform/pagination.js";
import { isUuid } from "../platform/validation.js";
import { Concert } from "./concert.entity.js";
import { Schedule } from "./schedule.entity.js";
import { Seat, type SeatStatus } from "./seat.entity.js";

export interface ScheduleWithAvailability {
  schedule: Schedule;
  availableSeats: number;
}

/** Rows of one page plus whether another page follows. */
export interface PageOf<T> {
  items: T[];
  hasMore: boolean;
}

function cut<T>(rows: T[], size: number): PageOf<T> {
  return { items: rows.slice(0, size), hasMore: rows.length > size };
}

/** The seat status a caller should see at `now`. */
export function visibleSeatStatus(seat: Pick<Seat, "status" | "heldUntil">, now: Date): SeatStatus {
  if (seat.status === "HELD" && (!seat.heldUntil || seat.heldUntil <= now)) return "AVAILABLE";
  return seat.status;
}

/** A concert as ListConcerts shows it. */
export type ConcertView = Pick<Concert, "id" | "title" | "artist" | "venue">;

// Plain rows of constant SQL: every user of a flash crowd lists concerts first, and nothing here
// needs entities (see compiled-query.ts for what hydration costs). Users see a schedule while it is published and its sale open or coming; a concert while it
// has such a schedule. Drafts and cancelled schedules are for AdminService only.
const PUBLIC_SCHEDULE = `s.state = 'PUBLISHED' and coalesce(s.sale_closes_at, s.start_time) > now()`;
const publicConcerts = (after: string) => `
  select c.id, c.title, c.artist, c.venue from concert c
  where ${after} exists (select 1 from schedule s where s.concert_id = c.id and ${PUBLIC_SCHEDULE})
  order by c.id limit ?`;
const FIRST_CONCERTS = publicConcerts("");
const CONCERTS_AFTER = publicConcerts("c.id > ? and");
const publicScheduleFilter = (now: Date) => ({
  state: "PUBLISHED" as const,
  $or: [{ saleClosesAt: { $gt: now } }, { saleClosesAt: null, startTime: { $gt: now } }],
});

export async function listConcerts(em: EntityManager, page: Page<string>): Promise<PageOf<ConcertView>> {
  const limit = page.size + 1;
  const rows =
    page.after === undefined
      ? await em.execute<ConcertView[]>(FIRST_CONCERTS, [limit])
      : await em.execute<ConcertView[]>(CONCERTS_AFTER, [page.after, limit]);
  return cut(rows, page.size);
}

export async function findConcert(em: EntityManager, concertId: string): Promise<Concert> {
  const concert = await em.findOne(Concert, { id: concertId }, { disableIdentityMap: true });
  if (!concert)
    throw new DomainError("CONCERT_NOT_FOUND", `concert ${concertId} does not exist`, [], { concert_id: concertId });
  return concert;
}

export async function findSchedule(em: EntityManager, scheduleId: string): Promise<Schedule> {
  const schedule = await em.findOne(Schedule, { id: scheduleId }, { disableIdentityMap: true });
  if (!schedule)
    throw new DomainError("SCHEDULE_NOT_FOUND", `schedule ${scheduleId} does not exist`, [], {
      schedule_id: scheduleId,
    });
  return schedule;
}

/** Keyset position of a schedule page: start time (ISO) and id. */
export type ScheduleKey = [string, string];

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * A schedule page's position as a page token may hold it: a start time as toISOString writes it
 * for years 0001–9999 (JavaScript also reads year 0000 and ±6-digit years, which PostgreSQL
 * would refuse in the query) and a schedule id.
 */
export const isScheduleKey = (value: unknown): value is ScheduleKey =>
  Array.isArray(value) &&
  value.length === 2 &&
  typeof value[0] === "string" &&
  ISO_TIME.test(value[0]) &&
  !value[0].startsWith("0000") &&
  !Number.isNaN(Date.parse(value[0])) &&
  isUuid(value[1]);

export async function listSchedules(
  em: EntityManager,
  concertId: string,
  page: Page<ScheduleKey>,
): Promise<PageOf<ScheduleWithAvailability>> {
  await findConcert(em, concertId);
  const after = page.after;
  const keyset = after
    ? [{ $or: [{ startTime: { $gt: new Date(after[0]) } }, { startTime: new Date(after[0]), id: { $gt: after[1] } }] }]
    : [];
  const where = { concertId, $and: [publicScheduleFilter(new Date()), ...keyset] };
  const rows = await em.find(Schedule, where, {
    orderBy: { startTime: "asc", id: "asc" },
    limit: page.size + 1,
    disableIdentityMap: true,
  });
  const { items, hasMore } = cut(rows, page.size);
  const counts = await countAvailableSeats(
    em,
    items.map((s) => s.id),
  );
  return { items: items.map((schedule) => ({ schedule, availableSeats: counts.get(schedule.id) ?? 0 })), hasMore };
}

async function countAvailableSeats(em: EntityManager, scheduleIds: string[]): Promise<Map<string, number>> {
  if (scheduleIds.length === 0) return new Map();
  const rows = await em
    .createQueryBuilder(Seat)
    .select(["scheduleId", raw("count(*) as available")])
    .where({
      scheduleId: { $in: scheduleIds },
      $or: [{ status: "AVAILABLE" }, { status: "HELD", heldUntil: { $lte: new Date() } }],
    })
    .groupBy("scheduleId")
    .execute<{ scheduleId: string; available: string | number }[]>("all", true);
  return new Map(rows.map((row) => [row.scheduleId, Number(row.available)]));
}

/** A seat as ListSeats shows it. */
export type SeatView = Pick<
  Seat,
  "id" | "scheduleId" | "seatNo" | "label" | "grade" | "priceMinor" | "status" | "heldUntil"
>;

type SeatRow = Omit<SeatView, "priceMinor"> & { priceMinor: string };

/**
 * One keyset page of a schedule's seats. Plain query-builder rows, not entities: a page is up to
 * 1,000 read-only seats, and hydrating them cost most of the call's CPU. The schedule is looked up
 * only when the page comes back empty, to tell "no such schedule" from "no further seats".
 */
export async function listSeats(em: EntityManager, scheduleId: string, page: Page<number>): Promise<PageOf<SeatView>> {
  const rows = await em
    .createQueryBuilder(Seat)
    .select(["id", "scheduleId", "seatNo", "label", "grade", "priceMinor", "status", "heldUntil"])
    .where(page.after === undefined ? { scheduleId } : { scheduleId, seatNo: { $gt: page.after } })
    .orderBy({ seatNo: "asc" })
    .limit(page.size + 1)
    .execute<SeatRow[]>("all");
  if (rows.length === 0) await findSchedule(em, scheduleId);
  return cut(
    rows.map((row) => ({ ...row, priceMinor: BigInt(row.priceMinor) })),
    page.size,
  );
}

/**
 * Looks up the concert of a schedule (SCHEDULE_NOT_FOUND if there is none), cached per process:
 * a schedule never moves to another concert, and the token check needs it on every booking call.
 * Inside a transaction, pass its `em` so a cache miss does not need a second connection.
 */
export function createConcertOfSchedule(
  orm: { em: EntityManager },
  maxEntries = 10_000,
): (scheduleId: string, em?: EntityManager) => Promise<string> {
  const cache = new Map<string, string>();
  return async (scheduleId, em) => {
    const cached = cache.get(scheduleId);
    if (cached) return cached;
    const { concertId } = await findSchedule(em ?? orm.em.fork(), scheduleId);
    // Crude bound: schedules are few, so a full reset is rare and cheap.
    if (cache.size >= maxEntries) cache.clear();
    cache.set(scheduleId, concertId);
    return concertId;
  };
}
