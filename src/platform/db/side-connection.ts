// A PostgreSQL connection of its own, outside the ORM's pool, for reads that must neither wait
// behind busy requests nor take a connection from them: the health probe (through the pool it
// would report PostgreSQL "unreachable" when it is merely busy) and the gauges read at each
// metrics scrape (through the pool, a scrape stuck behind a lock held the connections that
// calls needed). Every statement is bounded: PostgreSQL cancels it after the timeout
// (statement_timeout, lock_timeout) and the client gives up on it then too. A connection that
// failed is dropped and the next query opens a new one.

import pg from "pg";

export interface SideConnection {
  /** Rows of one statement (parameters as $1, $2, …). */
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

export function createSideConnection(databaseUrl: string, timeoutMs: number): SideConnection {
  let client: pg.Client | undefined;
  const drop = () => {
    const stale = client;
    client = undefined;
    void stale?.end().catch(() => {});
  };
  return {
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
      try {
        if (!client) {
          client = new pg.Client({
            connectionString: databaseUrl,
            connectionTimeoutMillis: timeoutMs,
            query_timeout: timeoutMs,
            statement_timeout: timeoutMs,
            lock_timeout: timeoutMs,
            application_name: "concert-booking side connection",
          });
          client.on("error", drop);
          await client.connect();
        }
        return (await client.query<R>(sql, params)).rows;
      } catch (error) {
        drop();
        throw error;
      }
    },
    async close() {
      const last = client;
      client = undefined;
      await last?.end().catch(() => {});
    },
  };
}
