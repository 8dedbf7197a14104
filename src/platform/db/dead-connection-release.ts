// MikroORM 7 runs transactions through Kysely's ControlledTransaction (kysely 0.29.6), which
// gives its connection back to the pool only once BEGIN, COMMIT or ROLLBACK succeeded
// (kysely-org/kysely#1990). When PostgreSQL's connection drops mid-transaction, the ROLLBACK that
// follows fails too, so the connection stays checked out for good: a few dozen such drops (a
// failover, a network cut) exhaust DATABASE_POOL_MAX and every later query waits forever, while
// health, on a connection of its own, still says SERVING. Answering BEGIN and ROLLBACK of a
// connection that is already dead without sending them lets Kysely release it, and pg-pool drops
// a released client that is not queryable. Nothing is pretended: PostgreSQL rolls back whatever a
// lost connection had open, and a BEGIN answered this way is followed by a statement that fails.

import type pg from "pg";

// The whole text: a BEGIN folded with the transaction's first statement (statement-folding.ts)
// must fail with that statement, not be answered as a bare BEGIN.
const BEGIN_OR_ROLLBACK = /^\s*(begin|start transaction|rollback)\b[^;]*;?\s*$/i;

/** pg-pool's own test for a client it must not reuse (pg has no public one). */
function isDead(client: pg.PoolClient): boolean {
  const internals = client as unknown as { _queryable?: boolean; _ending?: boolean };
  return internals._queryable === false || internals._ending === true;
}

function answered(text: string): pg.QueryResult {
  const command = /^\s*rollback/i.test(text) ? "ROLLBACK" : "BEGIN";
  return { command, rowCount: null, oid: 0, fields: [], rows: [] };
}

/** Pass as MikroORM's `driverOptions.onPoolCreated`: patches every client the pool creates. */
export function releaseDeadTransactionConnections(pool: pg.Pool): void {
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [text] = args;
      // Only promise-style BEGIN/ROLLBACK text, as Kysely sends them; everything else is untouched.
      if (typeof text !== "string" || !BEGIN_OR_ROLLBACK.test(text) || typeof args.at(-1) === "function")
        return query(...args);
      if (isDead(client)) return Promise.resolve(answered(text));
      return (query(...args) as Promise<pg.QueryResult>).catch((error: unknown) => {
        if (isDead(client)) return answered(text);
        throw error;
      });
    };
  });
}
