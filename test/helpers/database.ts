import { randomBytes } from "node:crypto";
import pg from "pg";
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

/**
 * Creates an empty database private to one test file, so files can run in parallel and leave nothing
 * behind. template0 avoids inheriting whatever someone put into template1.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const safeLabel = label
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 30);
  const name = `cb_${safeLabel}_${randomBytes(4).toString("hex")}`;
  await withAdmin(`create database "${name}" template template0`);
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
