// Prepares a ghz run against a live server (see prepare-run.ts), or the empty database run.sh
// starts its own server on.
//
//   node --import tsx ghz-bench/prepare.ts database DATABASE_URL   (re)creates an empty database
//   node --import tsx ghz-bench/prepare.ts configs HOST OUT_DIR [HOLDS [PAYMENTS]]
//   node --import tsx ghz-bench/prepare.ts cleanup REDIS_KEY_PREFIX  removes the run server's Redis keys
//
// HOLDS and PAYMENTS default to the "total" of reserve-seat.json and pay-reservation.json.

import pg from "pg";
import { loadConfig } from "../src/config.js";
import { removeRedisKeys } from "../src/loadtest/redis-cleanup.js";
import { loadGhzConfigs } from "./ghz-config.js";
import { prepareGhzRun } from "./prepare-run.js";

async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`database name "${name}" must be lowercase letters, digits and _`);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
    await client.query(`create database "${name}" template template0`);
  } finally {
    await client.end();
  }
}

function totalOf(call: string): number {
  return loadGhzConfigs().find(({ config }) => config.call.endsWith(`.${call}`))?.config.total ?? 0;
}

async function prepareConfigs(host: string, outDir: string, holds: number, payments: number): Promise<void> {
  const run = await prepareGhzRun(host, outDir, { holds, payments });
  console.error(
    `prepare: ${run.holdRows.length} seats to hold, ${run.paymentRows.length} holds to pay; configs in ${outDir}`,
  );
}

const [command, ...args] = process.argv.slice(2);
const count = (value: string | undefined, call: string) => (value === undefined ? totalOf(call) : Number(value));
try {
  if (command === "database" && args.length === 1) await recreateDatabase(args[0]!);
  else if (command === "configs" && args.length >= 2 && args.length <= 4)
    await prepareConfigs(args[0]!, args[1]!, count(args[2], "ReserveSeat"), count(args[3], "PayReservation"));
  else if (command === "cleanup" && args.length === 1)
    await removeRedisKeys(loadConfig(process.env).redisUrl, args[0]!);
  else
    throw new Error(
      "usage: prepare.ts database DATABASE_URL | prepare.ts configs HOST OUT_DIR [HOLDS [PAYMENTS]] | prepare.ts cleanup REDIS_KEY_PREFIX",
    );
} catch (error) {
  console.error(`prepare: ${(error as Error).message}`);
  process.exit(1);
}
process.exit(0);
