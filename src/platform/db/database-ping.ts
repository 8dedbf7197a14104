// A health probe with a connection of its own. Pinging through the ORM's pool would queue the
// probe behind busy requests under load and report PostgreSQL "unreachable" when it is merely
// busy; a dedicated connection answers whether the server itself is there.

import pg from "pg";

export interface DatabasePing {
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createDatabasePing(databaseUrl: string, timeoutMs: number): DatabasePing {
  let client: pg.Client | undefined;
  const drop = () => {
    const stale = client;
    client = undefined;
    void stale?.end().catch(() => {});
  };
  return {
    async ping() {
      try {
        if (!client) {
          client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
          client.on("error", drop);
          await client.connect();
        }
        await client.query("select 1");
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
