// A PostgreSQL connection that drops mid-transaction must go back to the pool (and be discarded),
// not stay checked out: with kysely 0.29.6 under MikroORM it did, and a few drops wedged the whole
// pool for good (dead-connection-release.ts). A pool of two connections and four drops show it.

import test from "ava";
import { startTcpProxy, type TcpProxy } from "../../src/loadtest/tcp-proxy.js";
import { ENTITIES } from "../../src/entities.js";
import { closeORM, initORM, type ORM } from "../../src/platform/db/orm.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

let database: TestDatabase;
let proxy: TcpProxy;
let orm: ORM;

test.before(async () => {
  database = await createTestDatabase("dead_connection");
  proxy = await startTcpProxy(Number(new URL(database.url).port || 5432));
  const url = new URL(database.url);
  url.port = String(proxy.port);
  ({ orm } = await initORM({ databaseUrl: url.toString(), entities: ENTITIES, poolMax: 2 }));
});

test.after.always(async () => {
  await closeORM(orm).catch(() => undefined);
  await proxy?.close();
  await database?.drop();
});

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

test("transactions whose connection dropped (mid-statement or at COMMIT) give their pool slot back", async (t) => {
  for (let drop = 0; drop < 4; drop++) {
    const atCommit = drop % 2 === 1;
    const failed = orm.em.fork().transactional(async (em) => {
      await em.execute("select 1");
      proxy.cut();
      if (!atCommit) await em.execute("select 1");
    });
    await t.throwsAsync(within(failed, 5000, `transaction ${drop}`), {
      message: /Connection terminated|not queryable|ECONNRESET/,
    });
    proxy.restore();
  }
  const [row] = await within(
    orm.em.fork().transactional((em) => em.execute<[{ ok: number }]>("select 1 as ok")),
    5000,
    "a transaction after four drops",
  );
  t.is(row.ok, 1);
  const pool = await orm.em.getConnection().getNativeClient();
  t.true(pool.totalCount <= 2);
  t.is(pool.waitingCount, 0);
});
