import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, migrateUp, MIGRATIONS_DIR } from "../../src/platform/db/orm.js";
import { waitFor } from "./wait.js";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Any database on the server works; CREATE/DROP DATABASE cannot run inside the database they target. */
export const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? "postgres://root@127.0.0.1:5432/postgres";

async function withAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Any session-level advisory lock key that nothing else uses: serializes building the template. */
const TEMPLATE_LOCK = 0x7e3a_91c2;

/** The migrations' names and contents: a template built from other migrations is another template. */
async function migrationsDigest(): Promise<string> {
  const hash = createHash("sha256");
  for (const file of (await readdir(MIGRATIONS_DIR)).sort()) {
    hash.update(file).update(await readFile(join(MIGRATIONS_DIR, file)));
  }
  return hash.digest("hex").slice(0, 12);
}

let template: Promise<string> | undefined;

/**
 * A database with every migration applied, built once per set of migrations (by whichever test
 * process gets there first) and then only copied: copying takes a fraction of migrating.
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const name = `cb_template_${await migrationsDigest()}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      await admin.query("select pg_advisory_lock($1)", [TEMPLATE_LOCK]);
      const { rowCount } = await admin.query("select 1 from pg_database where datname = $1", [name]);
      if (rowCount) return name;
      // Built under another name and renamed when complete: a crash midway leaves no half template.
      const building = `${name}_${randomBytes(4).toString("hex")}`;
      await admin.query(`create database "${building}" template template0`);
      const url = new URL(ADMIN_URL);
      url.pathname = `/${building}`;
      const { orm } = await initORM({ databaseUrl: url.toString(), entities: ENTITIES, poolMax: 1 });
      try {
        await migrateUp(orm);
      } finally {
        await closeORM(orm);
      }
      await admin.query(`alter database "${building}" rename to "${name}"`);
      return name;
    } finally {
      await admin.end();
    }
  })();
  return template;
}

/**
 * Creates a database private to one test file, so files can run in parallel and leave nothing
 * behind: empty (template0, which nobody changes), or with every migration applied.
 */
export async function createTestDatabase(label: string, options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const safeLabel = label
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 30);
  const name = `cb_${safeLabel}_${randomBytes(4).toString("hex")}`;
  const source = options.migrated ? await migratedTemplate() : "template0";
  await withAdmin(`create database "${name}" template "${source}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    // FORCE ends connections a failed test may have leaked, which would otherwise block the drop.
    drop: () => withAdmin(`drop database if exists "${name}" with (force)`),
  };
}

/**
 * Waits until `count` sessions wait, directly or behind one another, for a lock that the session
 * `holderPid` holds: the calls a test set up behind its lock have reached it (a fixed sleep would
 * guess how long a busy machine takes, and other tests' lock waits do not count).
 */
export async function waitForLockWaiters(
  databaseUrl: string,
  holderPid: number,
  count: number,
  timeoutMs = 30_000,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let waiting = 0;
  try {
    // Each query is its own transaction, so pg_stat_activity is read afresh every time.
    await waitFor(
      async () => {
        const { rows } = await client.query<{ n: number }>(
          `with recursive behind(pid) as (
             select pid from pg_stat_activity where $1::int = any(pg_blocking_pids(pid))
             union
             select a.pid from pg_stat_activity a join behind b on b.pid = any(pg_blocking_pids(a.pid)))
           select count(*)::int as n from behind`,
          [holderPid],
        );
        waiting = rows[0]!.n;
        return waiting >= count;
      },
      { timeoutMs, intervalMs: 50, message: () => `${count} sessions waiting behind ${holderPid} (${waiting} are)` },
    );
  } finally {
    await client.end();
  }
}
