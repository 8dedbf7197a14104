// `npm run seed`: the demo catalog, any size, into DATABASE_URL (migrating first). Safe to rerun.

import { MAX_SEATS_PER_SCHEDULE, seedCatalog, type SeedCatalogOptions, type SeedSummary } from "../platform/db/seed.js";
import { closeORM, migrateUp } from "../platform/db/orm.js";
import { environmentHelp, parseCommandLine, usageError } from "./command-line.js";
import { openDatabaseFor } from "./database-url.js";

const DEFAULTS = { concerts: "2", schedules: "3", seats: "1000" };

const USAGE = `usage: npm run seed -- [--concerts N] [--schedules N] [--seats N]

Applies pending migrations, then creates the demo catalog: N concerts, each with N schedules a
week apart, each with N seats. Safe to rerun: what exists stays, a schedule asked for more seats
grows to that many, nothing is removed. Progress on stderr, a summary on stdout.

  --concerts N    concerts (${DEFAULTS.concerts})
  --schedules N   schedules per concert (${DEFAULTS.schedules})
  --seats N       seats per schedule (${DEFAULTS.seats}; at most ${MAX_SEATS_PER_SCHEDULE})
  --help, -h      this text

${environmentHelp(["DATABASE_URL"])}`;

type Counts = Omit<SeedCatalogOptions, "onProgress">;

function parseCounts(): Counts {
  const values = parseCommandLine("seed", USAGE, {
    concerts: { type: "string", default: DEFAULTS.concerts },
    schedules: { type: "string", default: DEFAULTS.schedules },
    seats: { type: "string", default: DEFAULTS.seats },
  });
  const count = (name: keyof Counts, max = Number.MAX_SAFE_INTEGER): number => {
    const text = values[name];
    if (!/^[1-9]\d*$/.test(text) || Number(text) > max)
      usageError("seed", `--${name} must be an integer from 1 to ${max}, got "${text}"`);
    return Number(text);
  };
  return { concerts: count("concerts"), schedules: count("schedules"), seats: count("seats", MAX_SEATS_PER_SCHEDULE) };
}

const amount = (n: number, noun: string) => `${n.toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`;

/** What the catalog now holds at least, per concert and per schedule, and what this run changed. */
function describeSeed(counts: Counts, summary: SeedSummary, seconds: number): string {
  const schedules = counts.concerts * counts.schedules;
  const asked =
    `${amount(counts.concerts, "concert")} × ${amount(counts.schedules, "schedule")} per concert × ` +
    `${amount(counts.seats, "seat")} per schedule (${amount(schedules, "schedule")}, ` +
    `${amount(schedules * counts.seats, "seat")} in all)`;
  const { concertsInserted, schedulesInserted, schedulesGrown, seatsInserted } = summary;
  const changed =
    concertsInserted + schedulesInserted + schedulesGrown + seatsInserted === 0
      ? "nothing new, it was all there"
      : `new: ${amount(concertsInserted, "concert")}, ${amount(schedulesInserted, "schedule")}, ` +
        `${amount(seatsInserted, "seat")}` +
        (schedulesGrown > 0 ? `; ${amount(schedulesGrown, "schedule")} grown to ${counts.seats} seats` : "");
  return `seed: ${asked} ready in ${seconds.toFixed(1)} s; ${changed}`;
}

const counts = parseCounts();
const orm = await openDatabaseFor("seed", 2);
try {
  const applied = await migrateUp(orm);
  if (applied.length > 0) console.error(`seed: applied migrations ${applied.join(", ")}`);
  const started = performance.now();
  const summary = await seedCatalog(orm.em.fork(), {
    ...counts,
    onProgress: (p) =>
      console.error(`seed: schedule ${p.schedule}/${p.scheduleCount}: ${p.seatsDone}/${p.seatsPerSchedule} seats`),
  });
  console.log(describeSeed(counts, summary, (performance.now() - started) / 1000));
} finally {
  await closeORM(orm);
}
