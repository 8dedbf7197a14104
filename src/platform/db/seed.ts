import type { EntityManager } from "@mikro-orm/postgresql";
import type { QueryResult } from "@mikro-orm/core";

export interface SeedCatalogOptions {
  concerts: number;
  /** Schedules per concert. */
  schedules: number;
  /** Seats per schedule. */
  seats: number;
  onProgress?: (progress: SeedProgress) => void;
}

export interface SeedProgress {
  /** 1-based index of the schedule being filled, across all concerts. */
  schedule: number;
  scheduleCount: number;
  seatsDone: number;
  seatsPerSchedule: number;
}

/** What this run added; all zeros when the catalog was already there. */
export interface SeedSummary {
  concertsInserted: number;
  schedulesInserted: number;
  /** Schedules that were there with fewer seats, now counting the seats asked for. */
  schedulesGrown: number;
  seatsInserted: number;
}

export const SEATS_PER_ROW = 50;
/** Row labels run A…Z, AA…ZZ, AAA…ZZZ: 18,278 rows. */
export const MAX_SEATS_PER_SCHEDULE = (26 + 26 ** 2 + 26 ** 3) * SEATS_PER_ROW;

/** Bigger chunks are barely faster and make the progress output sparse. */
const SEAT_CHUNK = 10_000;

const DEMO_CONCERTS = [
  { title: "Midnight Neon Tour", artist: "The Paper Lanterns", venue: "Tokyo Garden Arena" },
  { title: "Aurora Sessions", artist: "Mika Sorano", venue: "Osaka Castle Hall" },
  { title: "Blue Hour Live", artist: "Kitsune Radio", venue: "Yokohama Bay Dome" },
  { title: "Summer Static", artist: "Hoshino & The Tides", venue: "Nagoya Sky Hall" },
  { title: "Paper Moon Night", artist: "Ren Amaya Quartet", venue: "Fukuoka Harbor Stage" },
];

// Ids are md5 hashes of stable names, so every run derives the same ids and ON CONFLICT makes reruns no-ops.
const CONCERT_ID = `md5('concert-' || ?::int)::uuid`;
const SCHEDULE_ID = `md5('schedule-' || ?::int || '-' || ?::int)::uuid`;

const INSERT_CONCERT = `
  insert into concert (id, title, artist, venue)
  values (${CONCERT_ID}, ?, ?, ?)
  on conflict do nothing`;

// Concerts start 30 days apart, a month from today; schedules are a week apart, at 18:30 in Tokyo.
// A rerun with more seats grows total_seats rather than leaving it stale; xmax = 0 tells a new
// row from a grown one (an updated row carries its updater's lock there).
const INSERT_SCHEDULE = `
  insert into schedule (id, concert_id, start_time, total_seats)
  values (
    ${SCHEDULE_ID}, ${CONCERT_ID},
    (date_trunc('day', now() at time zone 'Asia/Tokyo')
      + make_interval(days => 30 * ?::int + 7 * (?::int - 1), hours => 18, mins => 30)) at time zone 'Asia/Tokyo',
    ?::int)
  on conflict (id) do update set total_seats = greatest(schedule.total_seats, excluded.total_seats)
  where schedule.total_seats < excluded.total_seats
  returning (xmax = 0) as inserted`;

// r is the 0-based row; labels are bijective base-26 row letters plus the seat number within the row.
// Front rows (first fifth) are S, the next two fifths A, the rest B.
const INSERT_SEATS = `
  insert into seat (id, schedule_id, seat_no, label, grade, price_minor)
  select md5('seat-' || s.schedule_id || '-' || s.n)::uuid, s.schedule_id, s.n,
         case
           when s.r < 26 then chr(65 + s.r)
           when s.r < 702 then chr(65 + (s.r - 26) / 26) || chr(65 + (s.r - 26) % 26)
           else chr(65 + (s.r - 702) / 676) || chr(65 + (s.r - 702) / 26 % 26) || chr(65 + (s.r - 702) % 26)
         end || '-' || ((s.n - 1) % ${SEATS_PER_ROW} + 1),
         s.grade,
         case s.grade when 'S' then 12000 when 'A' then 9000 else 6000 end
  from (
    select ?::uuid as schedule_id, g.n, (g.n - 1) / ${SEATS_PER_ROW} as r,
           case
             when (g.n - 1) / ${SEATS_PER_ROW} < ceil(?::int / ${SEATS_PER_ROW}::numeric * 0.2) then 'S'
             when (g.n - 1) / ${SEATS_PER_ROW} < ceil(?::int / ${SEATS_PER_ROW}::numeric * 0.6) then 'A'
             else 'B'
           end as grade
    from generate_series(?::int, ?::int) as g(n)
  ) as s
  on conflict do nothing`;

/**
 * Fills the demo catalog with plain INSERT … SELECT statements: 300,000 seats through the unit of work
 * would take minutes, this takes seconds. Safe to rerun and to resume after an interruption.
 */
export async function seedCatalog(em: EntityManager, options: SeedCatalogOptions): Promise<SeedSummary> {
  validateCounts(options);
  const { concerts, schedules, seats, onProgress } = options;
  const summary: SeedSummary = { concertsInserted: 0, schedulesInserted: 0, schedulesGrown: 0, seatsInserted: 0 };
  const scheduleCount = concerts * schedules;

  for (let c = 1; c <= concerts; c++) {
    const demo = DEMO_CONCERTS[(c - 1) % DEMO_CONCERTS.length]!;
    const round = Math.floor((c - 1) / DEMO_CONCERTS.length);
    const title = round === 0 ? demo.title : `${demo.title} ${round + 1}`;
    summary.concertsInserted += await run(em, INSERT_CONCERT, [c, title, demo.artist, demo.venue]);

    for (let s = 1; s <= schedules; s++) {
      const [schedule] = await em.execute<{ inserted: boolean }[]>(INSERT_SCHEDULE, [c, s, c, c, s, seats]);
      if (schedule) summary[schedule.inserted ? "schedulesInserted" : "schedulesGrown"]++;
      const [{ id: scheduleId }] = await em.execute<[{ id: string }]>(`select ${SCHEDULE_ID} as id`, [c, s]);
      const scheduleNumber = (c - 1) * schedules + s;

      for (let from = 1; from <= seats; from += SEAT_CHUNK) {
        const to = Math.min(from + SEAT_CHUNK - 1, seats);
        summary.seatsInserted += await run(em, INSERT_SEATS, [scheduleId, seats, seats, from, to]);
        onProgress?.({ schedule: scheduleNumber, scheduleCount, seatsDone: to, seatsPerSchedule: seats });
      }
    }
  }
  // Fresh statistics at once, not when autovacuum next gets to it: with the table still counted
  // empty, the planner read every seat of a schedule and sorted them for each ListSeats page
  // instead of an ordered index scan, and the first flash crowd usually comes right after the
  // catalog is loaded.
  if (summary.concertsInserted + summary.schedulesInserted + summary.schedulesGrown + summary.seatsInserted > 0) {
    await em.execute("analyze concert, schedule, seat");
  }
  return summary;
}

export async function isCatalogEmpty(em: EntityManager): Promise<boolean> {
  const [row] = await em.execute<[{ empty: boolean }]>("select not exists (select 1 from concert) as empty");
  return row.empty;
}

function validateCounts({ concerts, schedules, seats }: SeedCatalogOptions): void {
  for (const [name, value] of Object.entries({ concerts, schedules, seats })) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (seats > MAX_SEATS_PER_SCHEDULE) {
    throw new RangeError(`seats must be at most ${MAX_SEATS_PER_SCHEDULE} per schedule, got ${seats}`);
  }
}

async function run(em: EntityManager, sql: string, params: unknown[]): Promise<number> {
  const result = await em.execute<QueryResult>(sql, params, "run");
  return result.affectedRows;
}
