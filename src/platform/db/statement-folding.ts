// Fewer round trips per transaction, at the driver. MikroORM sends every statement as text with
// its values already inlined (the simple query protocol), and PostgreSQL runs a text of several
// statements in one round trip, each statement with a snapshot of its own. Three uses of that:
// - A BEGIN is not sent by itself: it waits and goes out with the transaction's first statement
//   (a transaction that sends none sends nothing, its COMMIT or ROLLBACK is answered here).
// - A text of several statements answers with its last statement's result, as Kysely and
//   MikroORM expect of one statement; so code may send a statement that must run first (taking
//   a lock, say) together with the one whose rows it wants.
// - A text that ends with COMMIT_AFTER commits with its statement, whose result it answers with:
//   for a transaction's last statement, when no check of its result can still roll it back (a
//   statement that fails skips the COMMIT). The transaction's own COMMIT is then answered here.
// A query with bound values (not MikroORM's, e.g. a tool's own pg call) gets the deferred BEGIN
// sent ahead of it, unchanged.

import type pg from "pg";

const BEGIN_ONLY = /^\s*(begin|start transaction)\b[^;]*;?\s*$/i;
const END_ONLY = /^\s*(commit|rollback)\s*;?\s*$/i;

/** Appended to a transaction's last statement: it commits in the same round trip. */
export const COMMIT_AFTER = ";\ncommit";

export interface FoldingOptions {
  /** The text a BEGIN goes out as, decided when it is asked for (e.g. with a SET LOCAL). */
  begin?: (text: string) => string;
}

type Query = (...args: unknown[]) => unknown;
type Results = pg.QueryResult | pg.QueryResult[];

/** What a client holds back: a BEGIN not sent yet, or a transaction already committed with its last statement. */
type Held = { begin: string } | { committed: true };

const answered = (command: string) =>
  Promise.resolve({ command, rowCount: null, oid: 0, rows: [], fields: [] } as unknown as pg.QueryResult);

/** The result a text of several statements answers with: its last statement's, or the one before a trailing COMMIT. */
const resultOf = (results: Results, committing: boolean) =>
  Array.isArray(results) ? results.at(committing ? -2 : -1)! : results;

/** Pass to the pool (MikroORM's `driverOptions.onPoolCreated`). */
export function foldStatements(pool: pg.Pool, options: FoldingOptions = {}): void {
  const held = new WeakMap<pg.PoolClient, Held>();
  // A client goes back to the pool with no transaction open; nothing held back may outlive it.
  pool.on("release", (_error: unknown, client: pg.PoolClient) => held.delete(client));
  pool.on("connect", (connected) => {
    const client = connected as pg.PoolClient;
    const send = client.query.bind(client) as Query;
    const sendText = (text: string) => {
      const committing = text.endsWith(COMMIT_AFTER);
      return (send(text) as Promise<Results>).then((results) => {
        if (committing) held.set(client, { committed: true });
        return resultOf(results, committing);
      });
    };
    (client as unknown as { query: Query }).query = (...args: unknown[]) => {
      const [text, values] = args;
      const plain = typeof text === "string" && args.length <= 2 && (values === undefined || Array.isArray(values));
      const bound = plain && Array.isArray(values) && values.length > 0;
      const state = held.get(client);
      if (plain && !bound && BEGIN_ONLY.test(text)) {
        held.set(client, { begin: options.begin ? options.begin(text) : text });
        return answered("BEGIN");
      }
      if (state !== undefined) held.delete(client);
      // The transaction sent nothing, or committed with its last statement: nothing to end.
      if (state !== undefined && plain && !bound && END_ONLY.test(text))
        return answered(text.trim().split(/\s|;/)[0]!.toUpperCase());
      if (state !== undefined && "begin" in state) {
        if (!plain || bound) {
          // Queued by the client ahead of this query, on the same connection; a failure shows in the query's own.
          (send(state.begin) as Promise<unknown>).catch(() => undefined);
          return send(...args);
        }
        return sendText(`${state.begin};\n${text}`);
      }
      if (!plain || bound || !text.includes(";")) return send(...args);
      return sendText(text);
    };
  });
}
