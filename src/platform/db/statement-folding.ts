// Fewer round trips per transaction, at the driver. MikroORM sends every statement as text with
// its values already inlined (the simple query protocol), and PostgreSQL runs a text of several
// statements in one round trip, each statement with a snapshot of its own. Two uses of that:
// - A BEGIN is not sent by itself: it waits and goes out with the transaction's first statement
//   (a transaction that sends none sends nothing, its COMMIT or ROLLBACK is answered here).
// - A text of several statements answers with its last statement's result, as Kysely and
//   MikroORM expect of one statement; so code may send a statement that must run first (taking
//   a lock, say) together with the one whose rows it wants.
// A query with bound values (a compiled statement, or a tool's own pg call) gets the deferred BEGIN
// sent ahead of it; the clients pipeline, so both go in one round trip. A compiled statement's
// text goes out as its prepared statements (prepared-statements.ts).

import type pg from "pg";
import { preparedParts, type PreparedPart } from "./prepared-statements.js";

const BEGIN_ONLY = /^\s*(begin|start transaction)\b[^;]*;?\s*$/i;
const END_ONLY = /^\s*(commit|rollback)\s*;?\s*$/i;

export interface FoldingOptions {
  /** The text a BEGIN goes out as, decided when it is asked for (e.g. with a SET LOCAL). */
  begin?: (text: string) => string;
}

type Query = (...args: unknown[]) => unknown;

const answered = (command: string) =>
  Promise.resolve({ command, rowCount: null, oid: 0, rows: [], fields: [] } as unknown as pg.QueryResult);

/** The last statement's result of a text of several statements (pg answers those with an array). */
const lastResult = (result: pg.QueryResult | pg.QueryResult[]) => (Array.isArray(result) ? result.at(-1)! : result);

/**
 * A compiled text's statements, each under its prepared name with its share of the values, all
 * given to the client before any answer: one round trip (the clients pipeline). The answer is the
 * last statement's; a failure is the first statement's that failed (those after it then fail too,
 * in its transaction).
 */
function sendPrepared(send: Query, parts: PreparedPart[], values: unknown[]): Promise<pg.QueryResult> {
  let at = 0;
  const results = parts.map(({ name, text, params }) => {
    const own = values.slice(at, (at += params));
    return send({ name, text, values: own }) as Promise<pg.QueryResult>;
  });
  return Promise.all(results).then((all) => all.at(-1)!);
}

/**
 * Runs `send`, which gives the client several queries at once, with the socket corked: the client
 * writes each query as it gets it (pipelined), and one write then carries them all.
 */
function corked<T>(client: pg.PoolClient, send: () => T): T {
  const stream = (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection
    ?.stream;
  stream?.cork?.();
  try {
    return send();
  } finally {
    stream?.uncork?.();
  }
}

/** Pass to the pool (MikroORM's `driverOptions.onPoolCreated`). */
export function foldStatements(pool: pg.Pool, options: FoldingOptions = {}): void {
  const pending = new WeakMap<pg.PoolClient, string>();
  // A client goes back to the pool with no transaction open; nothing deferred may outlive it.
  pool.on("release", (_error: unknown, client: pg.PoolClient) => pending.delete(client));
  pool.on("connect", (client) => {
    const send = client.query.bind(client) as Query;
    (client as unknown as { query: Query }).query = (...params: unknown[]) => {
      const [text, values] = params;
      const plain = typeof text === "string" && params.length <= 2 && (values === undefined || Array.isArray(values));
      const bound = plain && Array.isArray(values) && values.length > 0;
      const parts = bound ? preparedParts(text) : undefined;
      const sendAll = () => (parts ? sendPrepared(send, parts, values as unknown[]) : send(...params));
      const begin = pending.get(client as pg.PoolClient);
      if (plain && !bound && BEGIN_ONLY.test(text)) {
        pending.set(client as pg.PoolClient, options.begin ? options.begin(text) : text);
        return answered("BEGIN");
      }
      if (begin !== undefined) {
        pending.delete(client as pg.PoolClient);
        if (plain && !bound && END_ONLY.test(text)) return answered(text.trim().split(/\s|;/)[0]!.toUpperCase());
        if (!plain || bound) {
          // Given to the client ahead of this query, on the same connection; a failure shows in the query's own.
          return corked(client, () => {
            (send(begin) as Promise<unknown>).catch(() => undefined);
            return sendAll();
          });
        }
        return (send(`${begin};\n${text}`) as Promise<pg.QueryResult | pg.QueryResult[]>).then(lastResult);
      }
      if (parts && parts.length > 1) return corked(client, sendAll);
      if (!plain || bound || !text.includes(";")) return sendAll();
      return (send(text) as Promise<pg.QueryResult | pg.QueryResult[]>).then(lastResult);
    };
  });
}
