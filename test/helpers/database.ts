import { randomBytes } from "node:crypto";
import pg from "pg";

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
