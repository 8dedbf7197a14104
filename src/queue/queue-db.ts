// Plain parameterised SQL for the waiting room on MikroORM's own pg pool. The queue writes
// batches (multi-row unnest inserts) that the unit of work cannot express, and counting each
// statement here gives the benchmark a real "statements per 1,000 joins".

import type { PostgreSqlConnection } from "@mikro-orm/postgresql";
import type { Pool, PoolClient, QueryResultRow } from "pg";
import type { ORM } from "../platform/db/orm.js";

export type Query = <R extends QueryResultRow = QueryResultRow>(
  text: string,
  params?: readonly unknown[],
) => Promise<R[]>;

export interface QueueDb {
  query: Query;
  /** Runs `fn` in one transaction on one connection (BEGIN/COMMIT count as statements). */
  transaction<T>(fn: (query: Query) => Promise<T>): Promise<T>;
}

/** Errors from PostgreSQL: a lost PostgreSQL connection inside a Redis call is no Redis outage (queue-mode.ts). */
const postgresErrors = new WeakSet<object>();
export const isPostgresError = (error: unknown) => error instanceof Object && postgresErrors.has(error);
const fromPostgres = (error: unknown) => {
  if (error instanceof Object) postgresErrors.add(error);
  throw error;
};

export async function createQueueDb(orm: ORM, onStatement: () => void): Promise<QueueDb> {
  const pool: Pool = await (orm.em.getConnection() as unknown as PostgreSqlConnection).getNativeClient();
  const on =
    (client: Pool | PoolClient): Query =>
    async (text, params = []) => {
      onStatement();
      const result = await client.query(text, params as unknown[]).catch(fromPostgres);
      return result.rows;
    };
  return {
    query: on(pool),
    async transaction(fn) {
      const client = await pool.connect().catch(fromPostgres);
      const query = on(client);
      let broken: Error | undefined;
      try {
        await query("begin");
        const result = await fn(query);
        await query("commit");
        return result;
      } catch (error) {
        // A connection that cannot even roll back is dropped rather than returned to the pool.
        await query("rollback").catch((rollbackError: Error) => (broken = rollbackError));
        throw error;
      } finally {
        client.release(broken);
      }
    },
  };
}

/** Lock of one concert's queue, taken by admission and by joins on PostgreSQL. */
export const CONCERT_LOCK_SQL = "select pg_advisory_xact_lock(hashtext('queue:' || $1::text))";
