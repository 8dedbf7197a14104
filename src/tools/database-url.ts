// The database of the tools that need nothing else (migrate, seed): DATABASE_URL checked as the
// server checks it, then connected to; a bad value (exit 2) or a database that cannot be reached
// (exit 1) is one line saying which and what to do, as the server says it, not a driver's stack trace.

import { ConfigError, loadDatabaseUrl } from "../config.js";
import { ENTITIES } from "../entities.js";
import { explainDatabaseConnectFailure } from "../platform/db/connect-failure.js";
import { closeORM, initORM, type ORM } from "../platform/db/orm.js";

export function databaseUrlFor(tool: string): string {
  try {
    return loadDatabaseUrl();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`${tool}: ${error.message}`);
    process.exit(2);
  }
}

/** Connects to DATABASE_URL, or exits with one line on stderr. */
export async function openDatabaseFor(tool: string, poolMax: number): Promise<ORM> {
  const databaseUrl = databaseUrlFor(tool);
  let orm: ORM | undefined;
  try {
    ({ orm } = await initORM({ databaseUrl, entities: ENTITIES, poolMax }));
    await orm.em.getConnection().execute("select 1");
    return orm;
  } catch (error) {
    if (orm) await closeORM(orm).catch(() => undefined);
    console.error(`${tool}: ${explainDatabaseConnectFailure(error, databaseUrl)}`);
    process.exit(1);
  }
}
