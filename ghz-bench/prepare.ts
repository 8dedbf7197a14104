// Prepares a ghz run against a live server: queue tokens for two admitted users, seats to hold,
// held reservations to pay, then writes each config of ghz-bench/configs, filled in, to OUT_DIR.
//
//   node --import tsx ghz-bench/prepare.ts database DATABASE_URL   (re)creates an empty database
//   node --import tsx ghz-bench/prepare.ts configs HOST OUT_DIR [SEATS_PER_SCHEDULE]
//
// SEATS_PER_SCHEDULE must not exceed the server's MAX_SEATS_PER_USER (run.sh starts its server
// with 100): both users hold that many seats per schedule.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../gen/concert/v1/queue_pb.js";
import { WalletService } from "../gen/concert/v1/wallet_pb.js";
import { createGrpcClient } from "../src/platform/rpc/grpc-client.js";
import { fillConfig, loadGhzConfigs, type Row, type Scalars } from "./ghz-config.js";

const QUEUE_TOKEN_HEADER = "x-queue-token";
const MAX_TOP_UP_MINOR = 10_000_000n;
const RESERVER = "ghz-reserver";
const PAYER = "ghz-payer";

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

async function retry<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000} s${last ? `: ${(last as Error).message}` : ""}`);
}

async function prepareConfigs(host: string, outDir: string, seatsPerSchedule: number): Promise<void> {
  const queue = createGrpcClient(QueueService, host);
  const booking = createGrpcClient(BookingService, host);
  const wallet = createGrpcClient(WalletService, host);
  try {
    const concert = await retry(
      "the server answering ListConcerts",
      60_000,
      async () => (await booking.listConcerts({})).concerts[0],
    );
    const admit = async (userId: string) => {
      const { token } = await queue.joinQueue({ concertId: concert.id, userId });
      await retry(`admission of ${userId}`, 60_000, async () =>
        (await queue.getQueueStatus({ token })).status?.state === QueueState.ACTIVE ? true : undefined,
      );
      return token;
    };
    const reserverToken = await admit(RESERVER);
    const payerToken = await admit(PAYER);
    const withToken = (token: string) => ({ metadata: { [QUEUE_TOKEN_HEADER]: token } });
    const { schedules } = await booking.listSchedules({ concertId: concert.id }, withToken(reserverToken));
    if (schedules.length < 2) throw new Error("the catalog needs at least 2 schedules (run.sh seeds 12)");
    const freeSeats = async (scheduleId: string, token: string) =>
      (await booking.listSeats({ scheduleId, pageSize: seatsPerSchedule }, withToken(token))).seats;

    // The reserver holds seats of every schedule but the last, through ghz.
    const seatRows: Row[] = [];
    for (const schedule of schedules.slice(0, -1)) {
      for (const seat of await freeSeats(schedule.id, reserverToken))
        seatRows.push({ SCHEDULE_ID: schedule.id, SEAT_ID: seat.id });
    }
    // The payer holds seats of the last schedule now and pays them through ghz.
    const payerSeats = await freeSeats(schedules.at(-1)!.id, payerToken);
    let owed = payerSeats.reduce((sum, seat) => sum + (seat.price?.amountMinor ?? 0n), 0n);
    for (let i = 0; owed > 0n; i++) {
      const amountMinor = owed < MAX_TOP_UP_MINOR ? owed : MAX_TOP_UP_MINOR;
      await wallet.topUp({ userId: PAYER, amount: { amountMinor }, idempotencyKey: `ghz-prepare-${Date.now()}-${i}` });
      owed -= amountMinor;
    }
    const reservationRows: Row[] = [];
    for (const seat of payerSeats) {
      const { reservation } = await booking.reserveSeat(
        { scheduleId: seat.scheduleId, seatId: seat.id, userId: PAYER, requestId: `ghz-prepare-${seat.id}` },
        withToken(payerToken),
      );
      reservationRows.push({ RESERVATION_ID: reservation!.id });
    }

    const scalars: Scalars = {
      CONCERT_ID: concert.id,
      SCHEDULE_ID: schedules[0]!.id,
      QUEUE_TOKEN: reserverToken,
      USER_ID: RESERVER,
      PAYER_TOKEN: payerToken,
      PAYER_ID: PAYER,
    };
    mkdirSync(outDir, { recursive: true });
    for (const { file, config } of loadGhzConfigs()) {
      const rows = JSON.stringify(config).includes("${SEAT_ID}") ? seatRows : reservationRows;
      writeFileSync(join(outDir, file), `${JSON.stringify(fillConfig(config, host, scalars, rows), null, 2)}\n`);
    }
    console.error(
      `prepare: ${seatRows.length} seats to hold, ${reservationRows.length} holds to pay; configs in ${outDir}`,
    );
  } finally {
    queue.close();
    booking.close();
    wallet.close();
  }
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "database" && args.length === 1) await recreateDatabase(args[0]!);
  else if (command === "configs" && (args.length === 2 || args.length === 3))
    await prepareConfigs(args[0]!, args[1]!, Number(args[2] ?? 100));
  else
    throw new Error("usage: prepare.ts database DATABASE_URL | prepare.ts configs HOST OUT_DIR [SEATS_PER_SCHEDULE]");
} catch (error) {
  console.error(`prepare: ${(error as Error).message}`);
  process.exit(1);
}
process.exit(0);
