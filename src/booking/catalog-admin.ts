// Catalog changes an operator makes (AdminService): concerts, and schedules with their seat maps.
// Creates are idempotent on a request id stored with the row, beside a digest of the arguments,
// so a retry returns the first result and a reused id with other arguments is refused.

import { raw } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { createHash } from "node:crypto";
import type { ORM } from "../platform/db/orm.js";
import { DomainError } from "../platform/domain-error.js";
import type { Page } from "../platform/pagination.js";
import { findConcert, type PageOf, type ScheduleKey } from "./catalog.js";
import { Concert } from "./concert.entity.js";
import { Schedule, type SeatSectionSpec } from "./schedule.entity.js";
import { Seat } from "./seat.entity.js";

export interface ConcertFields {
  title: string;
  artist: string;
  venue: string;
}

export interface SeatSection {
  name: string;
  grade: string;
  rows: number;
  seatsPerRow: number;
  priceMinor: bigint;
}

export interface CreateScheduleInput {
  concertId: string;
  startsAt: Date;
  saleOpensAt: Date | undefined;
  saleClosesAt: Date | undefined;
  sections: SeatSection[];
  draft: boolean;
  requestId: string;
}

/** A schedule as admins see it: every state, with its seat map and sales. */
export interface AdminScheduleView {
  schedule: Schedule;
  soldSeats: number;
}

const digest = (value: unknown) =>
  createHash("sha256")
    .update(JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v)))
    .digest("hex");

const reused = (requestId: string) =>
  new DomainError(
    "IDEMPOTENCY_KEY_REUSED",
    `request_id ${requestId} was already used with other arguments`,
    [{ field: "request_id", description: "was already used with other arguments" }],
    { request_id: requestId },
  );

export async function createConcert(orm: ORM, fields: ConcertFields, requestId: string): Promise<Concert> {
  const em = orm.em.fork();
  const fingerprint = digest(["concert", fields]);
  await em.execute(
    `insert into concert (id, title, artist, venue, request_id, request_fingerprint)
     values (gen_random_uuid(), ?, ?, ?, ?, ?) on conflict (request_id) do nothing`,
    [fields.title, fields.artist, fields.venue, requestId, fingerprint],
  );
  const [row] = await em.execute<{ id: string; request_fingerprint: string }[]>(
    `select id, request_fingerprint from concert where request_id = ?`,
    [requestId],
  );
  if (!row || row.request_fingerprint !== fingerprint) throw reused(requestId);
  // The fields it was created with (the fingerprint says these): a retry after an UpdateConcert
  // answers what the first call did (admin.proto).
  return { ...(await findConcert(em, row.id)), ...fields };
}

/** Sets the given fields of a concert; the others stay. */
export async function updateConcert(orm: ORM, concertId: string, fields: Partial<ConcertFields>): Promise<Concert> {
  const em = orm.em.fork();
  const concert = await findConcert(em, concertId);
  const changes = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  if (Object.keys(changes).length > 0) {
    await em.nativeUpdate(Concert, { id: concertId }, changes);
  }
  return { ...concert, ...changes };
}

// One INSERT … SELECT per section: PostgreSQL generates its seats, so 100,000 seats are a few
// statements, not 100,000 rows sent over the wire. Labels read "<section>-<row>-<seat>".
const INSERT_SECTION_SEATS = `
  insert into seat (id, schedule_id, seat_no, label, grade, price_minor)
  select gen_random_uuid(), ?::uuid, ?::int + g.n + 1,
         ?::text || '-' || (g.n / ?::int + 1) || '-' || (g.n % ?::int + 1), ?::text, ?::bigint
  from generate_series(0, ?::int - 1) as g(n)`;

/**
 * Creates a schedule and all its seats in one transaction. A retry with the same request id
 * (also one racing the first call) returns the schedule the first call created.
 */
export async function createSchedule(orm: ORM, input: CreateScheduleInput): Promise<AdminScheduleView> {
  const fingerprint = digest(["schedule", { ...input, requestId: undefined }]);
  const sections: SeatSectionSpec[] = input.sections.map((s) => ({ ...s, priceMinor: s.priceMinor.toString() }));
  const totalSeats = input.sections.reduce((sum, s) => sum + s.rows * s.seatsPerRow, 0);
  const createdId = await orm.em.fork().transactional(async (em) => {
    await findConcert(em, input.concertId);
    // Waits for a racing insert of the same request id and then inserts nothing.
    const inserted = await em.execute<{ id: string }[]>(
      `insert into schedule (id, concert_id, start_time, total_seats, state, sale_opens_at, sale_closes_at, sections, request_id, request_fingerprint)
       values (gen_random_uuid(), ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?) on conflict (request_id) do nothing returning id`,
      [
        input.concertId,
        input.startsAt,
        totalSeats,
        input.draft ? "DRAFT" : "PUBLISHED",
        input.saleOpensAt ?? null,
        input.saleClosesAt ?? null,
        JSON.stringify(sections),
        input.requestId,
        fingerprint,
      ],
    );
    const id = inserted[0]?.id;
    if (id === undefined) return undefined;
    let offset = 0;
    for (const s of input.sections) {
      await em.execute(INSERT_SECTION_SEATS, [
        id,
        offset,
        s.name,
        s.seatsPerRow,
        s.seatsPerRow,
        s.grade,
        s.priceMinor,
        s.rows * s.seatsPerRow,
      ]);
      offset += s.rows * s.seatsPerRow;
    }
    return id;
  });
  const em = orm.em.fork();
  const schedule = await em.findOne(Schedule, createdId ? { id: createdId } : { requestId: input.requestId }, {
    disableIdentityMap: true,
  });
  if (!schedule || schedule.requestFingerprint !== fingerprint) throw reused(input.requestId);
  return { schedule, soldSeats: (await countSoldSeats(em, [schedule.id])).get(schedule.id) ?? 0 };
}

export async function countSoldSeats(em: EntityManager, scheduleIds: string[]): Promise<Map<string, number>> {
  if (scheduleIds.length === 0) return new Map();
  const rows = await em
    .createQueryBuilder(Seat)
    .select(["scheduleId", raw("count(*) as sold")])
    .where({ scheduleId: { $in: scheduleIds }, status: "RESERVED" })
    .groupBy("scheduleId")
    .execute<{ scheduleId: string; sold: string | number }[]>("all", true);
  return new Map(rows.map((row) => [row.scheduleId, Number(row.sold)]));
}

/** Every schedule of a concert, drafts and cancelled ones too, by start time. */
export async function listSchedulesForAdmin(
  orm: ORM,
  concertId: string,
  page: Page<ScheduleKey>,
): Promise<PageOf<AdminScheduleView>> {
  const em = orm.em.fork();
  await findConcert(em, concertId);
  const after = page.after;
  const where = after
    ? {
        concertId,
        $or: [{ startTime: { $gt: new Date(after[0]) } }, { startTime: new Date(after[0]), id: { $gt: after[1] } }],
      }
    : { concertId };
  const rows = await em.find(Schedule, where, {
    orderBy: { startTime: "asc", id: "asc" },
    limit: page.size + 1,
    disableIdentityMap: true,
  });
  const items = rows.slice(0, page.size);
  const sold = await countSoldSeats(
    em,
    items.map((s) => s.id),
  );
  return {
    items: items.map((schedule) => ({ schedule, soldSeats: sold.get(schedule.id) ?? 0 })),
    hasMore: rows.length > page.size,
  };
}
