// What single operations of the booking path cost in CPU, one at a time, in one process: the
// MikroORM way beside the compiled-statement or raw-pg way. These are the figures behind the
// booking suite's "where a payment's CPU goes" table in docs/benchmarks.md, and behind the two
// levers it measured and did not take (prepared statements, grpc-js itself).
//
//   node --import tsx bench/orm-ops.ts [--repeat 2000]
//
// Creates a scratch database next to TEST_PG_ADMIN_URL (as the tests do) and drops it at the end.

import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pg from "pg";
import { lockSeat, findReservation } from "../src/booking/reservation-rows.js";
import { ENTITIES } from "../src/entities.js";
import { closeORM, initORM, migrateUp, type ORM } from "../src/platform/db/orm.js";
import { seedCatalog } from "../src/platform/db/seed.js";
import { loadWallet } from "../src/wallet/wallet-ledger.js";
import { Wallet } from "../src/wallet/wallet.entity.js";
import { loadCatalog } from "../test/helpers/booking.js";
import { createTestDatabase } from "../test/helpers/database.js";

const { values } = parseArgs({ options: { repeat: { type: "string", default: "2000" } } });
const repeat = Number(values.repeat);

/** This process's CPU time (µs) per call of `op`, after a tenth as many warm-up calls. */
async function cpuPerCall(op: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < repeat / 10; i++) await op();
  const started = process.cpuUsage();
  for (let i = 0; i < repeat; i++) await op();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / repeat;
}

const rows: [string, string, number][] = [];
async function measure(part: string, way: string, op: () => Promise<unknown>): Promise<void> {
  rows.push([part, way, await cpuPerCall(op)]);
}

async function ormOps(orm: ORM, pool: pg.Pool, seatId: string): Promise<void> {
  await measure("transaction around `select 1`", "em.fork().transactional", () =>
    orm.em.fork().transactional((em) => em.execute("select 1")),
  );
  await measure("transaction around `select 1`", "raw pg BEGIN/select/COMMIT", async () => {
    const client = await pool.connect();
    try {
      await client.query("begin");
      await client.query("select 1");
      await client.query("commit");
    } finally {
      client.release();
    }
  });
  await orm.em.fork().transactional(async (em) => {
    await measure("seat lock (inside a transaction)", "query builder, LockMode.PESSIMISTIC_WRITE", () =>
      lockSeat(em, seatId),
    );
    await measure("reservation by id (inside a transaction)", "compiled statement", () =>
      findReservation(em, "00000000-0000-0000-0000-000000000000"),
    );
    const wallet = (await em.findOne(Wallet, { userId: "ops" }))!;
    await measure("flush of a changed wallet (versioned UPDATE)", "em.flush", async () => {
      wallet.balanceMinor -= 1n;
      await em.flush();
    });
    await measure("flush of a changed wallet (versioned UPDATE)", "em.execute of the same UPDATE", () =>
      em.execute(
        'update "wallet" set "balance_minor" = "balance_minor" - 1, "version" = "version" + 1 where "user_id" = ? and "version" >= ?',
        ["ops", 0],
      ),
    );
  });
  const debit = async (read: (em: Parameters<typeof loadWallet>[0]) => Promise<Wallet | null>) =>
    orm.em.fork().transactional(async (em) => {
      const wallet = (await read(em))!;
      wallet.balanceMinor -= 1n;
      await em.flush();
    });
  await measure("transaction reading and flushing the wallet", "em.findOne", () =>
    debit((em) => em.findOne(Wallet, { userId: "ops" })),
  );
  await measure("transaction reading and flushing the wallet", "loadWallet (compiled SELECT + em.merge)", () =>
    debit((em) => loadWallet(em, "ops")),
  );
}

/** PostgreSQL's own CPU per statement: the backend's /proc time around `repeat` statements of one client. */
async function preparedOps(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const pid = (await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid;
    const ticks = () => {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / 100);
    };
    await client.query(`prepare wallet_by_user(text) as select * from wallet where user_id = $1`);
    const backendCpu = async (way: string, text: () => string) => {
      for (let i = 0; i < repeat / 10; i++) await client.query(text());
      const before = ticks();
      for (let i = 0; i < repeat * 5; i++) await client.query(text());
      rows.push(["PostgreSQL CPU per wallet lookup (backend, one client)", way, (ticks() - before) / (repeat * 5)]);
    };
    await backendCpu(
      "text with the value inlined (what MikroORM sends)",
      () => `select "w0".* from "wallet" as "w0" where "w0"."user_id" = 'ops'`,
    );
    await backendCpu("EXECUTE of a prepared statement", () => `execute wallet_by_user('ops')`);
  } finally {
    await client.end();
  }
}

/** A bare grpc-js unary echo, client and server in this process: the transport's own CPU per call. */
async function grpcEcho(): Promise<void> {
  const same = (b: Buffer) => b;
  const definition = {
    echo: {
      path: "/bench.Echo/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: same,
      requestDeserialize: same,
      responseSerialize: same,
      responseDeserialize: same,
    },
  };
  const server = new grpc.Server();
  server.addService(definition, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
      callback(null, call.request),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = () =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest("/bench.Echo/Echo", same, same, Buffer.from("hello"), (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
  // 64 in flight, as the suites run: the per-call cost at a realistic concurrency.
  const calls = repeat * 10;
  let left = calls + calls / 10;
  const drive = (count: number) =>
    Promise.all(
      Array.from({ length: 64 }, async () => {
        while (left-- > count) await call();
      }),
    );
  await drive(calls); // warm-up: the first tenth
  const started = process.cpuUsage();
  await drive(0);
  const used = process.cpuUsage(started);
  rows.push([
    "unary call, client and server in one process",
    "bare grpc-js echo, 64 in flight",
    (used.user + used.system) / calls,
  ]);
  client.close();
  server.forceShutdown();
}

const database = await createTestDatabase("bench_orm_ops");
const { orm } = await initORM({ databaseUrl: database.url, entities: ENTITIES, poolMax: 4 });
const pool = new pg.Pool({ connectionString: database.url, max: 4 });
try {
  await migrateUp(orm);
  await seedCatalog(orm.em.fork(), { concerts: 1, schedules: 1, seats: 100 });
  const catalog = await loadCatalog(orm.em.fork());
  await pool.query("insert into wallet (user_id, balance_minor) values ('ops', 1000000000)");
  await ormOps(orm, pool, catalog.schedules[0]!.seatIds[0]!);
  await preparedOps(database.url);
  await grpcEcho();
  console.log(
    `\nCPU per operation, ${repeat} sequential calls each (node ${process.version}, ${new Date().toISOString()})\n`,
  );
  console.log("| operation | way | CPU µs |\n| --- | --- | ---: |");
  for (const [part, way, us] of rows) console.log(`| ${part} | ${way} | ${Math.round(us)} |`);
} finally {
  await pool.end();
  await closeORM(orm);
  await database.drop();
}
