import { join } from "node:path";
import pg from "pg";
import { MikroORM, type EntityManager, type Options } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import { boundBegin } from "./call-bound.js";
import { releaseDeadTransactionConnections } from "./dead-connection-release.js";
import { foldStatements } from "./statement-folding.js";

export type ORM = MikroORM;

/** Absolute, so tools and tests find the migrations whatever the working directory. */
export const MIGRATIONS_DIR = join(import.meta.dirname, "migrations");

export interface OrmOptions {
  databaseUrl: string;
  /** The entities to map: the application's list (src/entities.ts), which lives at the wiring level. */
  entities: Options["entities"];
  poolMax: number;
  debug?: boolean;
}

export async function initORM(options: OrmOptions): Promise<{ orm: MikroORM; em: EntityManager }> {
  const orm = await MikroORM.init({
    clientUrl: options.databaseUrl,
    entities: options.entities,
    extensions: [Migrator],
    // MikroORM's default pool max is 10, too few for the booking hot path.
    pool: { max: options.poolMax },
    driverOptions: {
      // A client sends a query without waiting for the answer to the one before: statements sent
      // together (a BEGIN, a lock, the read after it) cost one round trip (compiled-query.ts).
      pipeline: true,
      onPoolCreated: (pool: pg.Pool) => {
        releaseDeadTransactionConnections(pool);
        foldStatements(pool, { begin: boundBegin });
      },
    },
    debug: options.debug ?? false,
    // Creating databases is the operator's job, not the application's.
    ensureDatabase: false,
    migrations: {
      // The same folder for both: everything runs from source under tsx, nothing is compiled.
      path: MIGRATIONS_DIR,
      pathTs: MIGRATIONS_DIR,
      glob: "!(*.d).{js,ts}",
      emit: "ts",
      // Snapshot files are named after the database and would litter src/ for every test database.
      snapshot: false,
      // The application logs applied migrations itself.
      silent: true,
    },
  });
  return { orm, em: orm.em };
}

/** Any constant works; it only has to be the same for every process migrating this database. */
const MIGRATION_LOCK_KEY = 0x636f6e63;

/**
 * Applies pending migrations and returns the names applied. Several processes start at once in
 * cluster mode and in CI: a session-level advisory lock, held on a dedicated connection, makes
 * them take turns, so the later ones find nothing left to apply instead of failing on CREATE TABLE.
 */
export async function migrateUp(orm: MikroORM): Promise<string[]> {
  const lock = new pg.Client({ connectionString: orm.config.get("clientUrl") });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    const applied = await orm.migrator.up();
    return applied.map((migration) => migration.name);
  } finally {
    await lock.end();
  }
}

export async function closeORM(orm: MikroORM): Promise<void> {
  await orm.close(true);
}
