// Every ghz-bench config, run by the real ghz for a second or so against a test server (own
// database, own Redis key prefix): no call fails, and each call did what its config's name says,
// read back from PostgreSQL and Redis. ghz is $GHZ, else the one on PATH; .ci/run puts
// ../shared/bin on PATH.

import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { loadGhzConfigs, type Row } from "../../ghz-bench/ghz-config.js";
import { prepareGhzRun, type PreparedRun } from "../../ghz-bench/prepare-run.js";
import { seedCatalog } from "../../src/platform/db/seed.js";
import { createQueueKeys } from "../../src/queue/queue-keys.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Two turns of the configs' 64 users each; duration-based configs run this long. */
const SIZE = { holds: 128, payments: 128, duration: "1s" };
const CALL_TIMEOUT = "60s";

/** ghz's JSON report (--format json), the fields read here. */
interface GhzReport {
  count: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number> | null;
}

function findGhz(): string {
  const candidates = process.env.GHZ
    ? [process.env.GHZ]
    : (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "ghz"));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new Error(
    process.env.GHZ
      ? `GHZ=${process.env.GHZ} is not an executable file; point GHZ at ghz (https://ghz.sh/docs/install)`
      : "ghz is not on PATH: set GHZ=/path/to/ghz or put ghz on PATH (https://ghz.sh/docs/install; .ci/run adds ../shared/bin)",
  );
}

let ghz: string;
let app: TestApp;
let prepared: PreparedRun;
let outDir: string;

test.before(async () => {
  ghz = findGhz();
  app = await startTestApp("ghz_real");
  // 150 seats per schedule: prepare-run takes 128 (2 per user) from each, one schedule per kind.
  await seedCatalog(app.app.orm.em.fork(), { concerts: 1, schedules: 3, seats: 150 });
  outDir = mkdtempSync(join(tmpdir(), "ghz-real-"));
  prepared = await prepareGhzRun(app.grpcAddress, outDir, SIZE);
});

test.after.always(async () => {
  await app?.stop();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** Runs one filled config and returns ghz's report; a failing ghz fails the test with its output. */
async function runGhz(file: string): Promise<GhzReport> {
  const config = prepared.configs[file]!;
  // The configs' per-call timeout is a latency bound: on a busy machine it would fail calls that work.
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, "utf8")), timeout: CALL_TIMEOUT }));
  const output = join(outDir, `${file}.report.json`);
  await promisify(execFile)(ghz, ["--config", config, "--format", "json", "--output", output], {
    cwd: ROOT,
    timeout: 120_000,
  });
  return JSON.parse(readFileSync(output, "utf8")) as GhzReport;
}

const sql = <T extends object>(query: string, params: unknown[] = []) =>
  app.app.orm.em.getConnection().execute<T[]>(query, params);

/** Runs the config and checks that ghz made calls and every one of them returned OK. */
async function runWithoutErrors(t: ExecutionContext, file: string): Promise<number> {
  const report = await runGhz(file);
  t.true(report.count > 0, `${file}: ghz made no call`);
  t.deepEqual(report.statusCodeDistribution, { OK: report.count }, JSON.stringify(report.errorDistribution));
  return report.count;
}

const bySeat = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.SEAT_ID!, r.USER_ID!]));
const byReservation = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.RESERVATION_ID!, r.USER_ID!]));
const configOf = (file: string) => loadGhzConfigs().find((c) => c.file === file)!.config;
const concurrencyOf = (file: string) => configOf(file).concurrency;

// Serial and in run.sh's order: holds and payments come after the reads, JoinQueue's crowd last.
test.serial("get-queue-status.json: polls one admitted token without an error", async (t) => {
  await runWithoutErrors(t, "get-queue-status.json");
});

test.serial("list-seats.json: reads the first page of seats without an error", async (t) => {
  await runWithoutErrors(t, "list-seats.json");
});

test.serial("reserve-seat.json: every call holds a different seat, for its row's user", async (t) => {
  const calls = await runWithoutErrors(t, "reserve-seat.json");
  t.is(calls, prepared.holdRows.length);
  const held = await sql<{ seat_id: string; user_id: string }>(
    "select seat_id, user_id from reservation where status = 'HELD' and user_id like 'ghz-%-holder-%'",
  );
  t.deepEqual(bySeat(held.map((r) => ({ SEAT_ID: r.seat_id, USER_ID: r.user_id }))), bySeat(prepared.holdRows));
  t.is(new Set(held.map((r) => r.user_id)).size, concurrencyOf("reserve-seat.json"));
});

test.serial("top-up.json: one wallet per ghz worker, every call credited once", async (t) => {
  const calls = await runWithoutErrors(t, "top-up.json");
  const wallets = await sql<{ user_id: string; entries: number; credited: string }>(
    `select user_id, count(*)::int as entries, sum(amount_minor)::text as credited
       from ledger_entry where kind = 'TOP_UP' and user_id like 'ghz-wallet-%' group by user_id`,
  );
  t.is(wallets.length, concurrencyOf("top-up.json"));
  for (const { user_id } of wallets) t.regex(user_id, /^ghz-wallet-g\d+c\d+$/);
  t.is(
    wallets.reduce((sum, w) => sum + w.entries, 0),
    calls,
  );
  t.is(
    wallets.reduce((sum, w) => sum + BigInt(w.credited), 0n),
    BigInt(calls) * BigInt((configOf("top-up.json").data as { amount: { amount_minor: string } }).amount.amount_minor),
  );
});

test.serial("pay-reservation.json: every call pays a different hold from its row's wallet", async (t) => {
  const calls = await runWithoutErrors(t, "pay-reservation.json");
  t.is(calls, prepared.paymentRows.length);
  const payments = await sql<{ reservation_id: string; user_id: string }>(
    "select p.reservation_id, p.user_id from payment p join reservation r on r.id = p.reservation_id where r.status = 'CONFIRMED' and p.user_id like 'ghz-%-payer-%'",
  );
  const paid = payments.map((p) => ({ RESERVATION_ID: p.reservation_id, USER_ID: p.user_id }));
  t.deepEqual(byReservation(paid), byReservation(prepared.paymentRows));
  // prepare-run topped each payer up by exactly what its holds cost.
  const left = await sql<{ wallets: number; balance: string }>(
    "select count(*)::int as wallets, sum(balance_minor)::text as balance from wallet where user_id like 'ghz-%-payer-%'",
  );
  t.deepEqual(left, [{ wallets: concurrencyOf("pay-reservation.json"), balance: "0" }]);
});

test.serial("join-queue.json: every call puts a different user in the waiting room", async (t) => {
  const calls = await runWithoutErrors(t, "join-queue.json");
  const redis = new Redis(app.config.redisUrl);
  try {
    const users = await redis.hkeys(createQueueKeys(app.config.redisKeyPrefix).concert(prepared.concertId).users);
    t.is(users.filter((u) => /^ghz-\d+-[A-Za-z0-9]{8}$/.test(u)).length, calls);
  } finally {
    redis.disconnect();
  }
});
