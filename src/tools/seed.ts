import { parseArgs } from "node:util";
import { ENTITIES } from "../entities.js";
import { closeORM, initORM, migrateUp } from "../platform/db/orm.js";
import { seedCatalog, type SeedCatalogOptions } from "../platform/db/seed.js";
import { databaseUrlFor } from "./database-url.js";

const USAGE =
  "usage: seed [--concerts N] [--schedules N] [--seats N]   (defaults 2, 3, 1000; DATABASE_URL selects the database)";

function parseCounts(argv: string[]): Omit<SeedCatalogOptions, "onProgress"> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      concerts: { type: "string", default: "2" },
      schedules: { type: "string", default: "3" },
      seats: { type: "string", default: "1000" },
    },
  });
  const count = (name: string, text: string): number => {
    if (!/^[1-9]\d*$/.test(text)) {
      throw new TypeError(`--${name} must be a positive integer, got "${text}"`);
    }
    return Number(text);
  };
  return {
    concerts: count("concerts", values.concerts),
    schedules: count("schedules", values.schedules),
    seats: count("seats", values.seats),
  };
}

let counts: Omit<SeedCatalogOptions, "onProgress">;
try {
  counts = parseCounts(process.argv.slice(2));
} catch (error) {
  console.error(`seed: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}

const databaseUrl = databaseUrlFor("seed");
const { orm } = await initORM({ databaseUrl, entities: ENTITIES, poolMax: 2 });
try {
  const applied = await migrateUp(orm);
  if (applied.length > 0) {
    console.error(`seed: applied migrations ${applied.join(", ")}`);
  }
  const started = performance.now();
  const summary = await seedCatalog(orm.em.fork(), {
    ...counts,
    onProgress: (p) =>
      console.error(`seed: schedule ${p.schedule}/${p.scheduleCount}: ${p.seatsDone}/${p.seatsPerSchedule} seats`),
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `seed: ${counts.concerts} concerts × ${counts.schedules} schedules × ${counts.seats} seats in ${seconds}s ` +
      `(inserted ${summary.concertsInserted} concerts, ${summary.schedulesInserted} schedules, ${summary.seatsInserted} seats)`,
  );
} finally {
  await closeORM(orm);
}
