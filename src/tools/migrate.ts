// `npm run migrate`: applies the pending migrations of src/platform/db/migrations (the server
// does it too at start; this is for deploys that migrate first).

import { migrateUp, closeORM } from "../platform/db/orm.js";
import { environmentHelp, parseCommandLine } from "./command-line.js";
import { openDatabaseFor } from "./database-url.js";

const USAGE = `usage: npm run migrate

Applies the pending migrations to the database and prints their names, or that the schema is up
to date. Safe to run while servers start: they take turns on an advisory lock. The server applies
them itself at start as well; this is for deploys that migrate first.

  --help, -h      this text

${environmentHelp(["DATABASE_URL"])}`;

parseCommandLine("migrate", USAGE, {});
const orm = await openDatabaseFor("migrate", 1);
try {
  const applied = await migrateUp(orm);
  console.log(applied.length > 0 ? `migrate: applied ${applied.join(", ")}` : "migrate: schema is up to date");
} finally {
  await closeORM(orm);
}
