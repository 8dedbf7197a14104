// What a ghz run needs from a live server before it starts: admitted users with their queue
// tokens, free seats for ReserveSeat to hold, held seats and funded wallets for PayReservation;
// then each config of ghz-bench/configs, filled in, written to a directory.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BookingService, SeatStatus, type Seat } from "../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../gen/concert/v1/queue_pb.js";
import { WalletService } from "../gen/concert/v1/wallet_pb.js";
import { QUEUE_TOKEN_HEADER } from "../src/queue/admission-context.js";
import { createGrpcClient, type GrpcClient } from "../src/platform/rpc/grpc-client.js";
import { fillConfig, loadGhzConfigs, usesRows, type GhzConfig, type Row, type Scalars } from "./ghz-config.js";

const MAX_TOP_UP_MINOR = 10_000_000n;
/** Seats each user gets per schedule: under the server's default MAX_SEATS_PER_USER (4). */
const SEATS_PER_USER_PER_SCHEDULE = 2;

export interface RunSize {
  /** ReserveSeat calls (rounded down to whole turns over its users). */
  holds: number;
  /** PayReservation calls (rounded down likewise). */
  payments: number;
  /** Replaces the duration of the duration-based configs (the test runs them briefly). */
  duration?: string;
}

export interface PreparedRun {
  /** Config file name → path of the filled config. */
  configs: Record<string, string>;
  concertId: string;
  /** What ReserveSeat sends: SCHEDULE_ID, SEAT_ID, USER_ID, USER_TOKEN per request. */
  holdRows: Row[];
  /** What PayReservation sends: RESERVATION_ID, USER_ID, USER_TOKEN per request. */
  paymentRows: Row[];
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

function configFor(call: string): GhzConfig {
  const found = loadGhzConfigs().find(({ config }) => config.call.endsWith(`.${call}`));
  if (!found) throw new Error(`no ghz config calls ${call}`);
  return found.config;
}

interface SeatRow {
  seat: Seat;
  row: Row;
}

/** Rows in turn: seat i goes to user i % users.length. */
function inTurn(seats: Seat[], users: { userId: string; token: string }[]): SeatRow[] {
  return seats.map((seat, i) => {
    const { userId, token } = users[i % users.length]!;
    return { seat, row: { SCHEDULE_ID: seat.scheduleId, SEAT_ID: seat.id, USER_ID: userId, USER_TOKEN: token } };
  });
}

export async function prepareGhzRun(host: string, outDir: string, size: RunSize): Promise<PreparedRun> {
  const queue = createGrpcClient(QueueService, host);
  const booking = createGrpcClient(BookingService, host);
  const wallet = createGrpcClient(WalletService, host);
  const withToken = (token: string) => ({ metadata: { [QUEUE_TOKEN_HEADER]: token } });
  try {
    const concert = await retry(
      "the server answering ListConcerts",
      60_000,
      async () => (await booking.listConcerts({})).concerts[0],
    );
    // Users of this run only: a server that ran ghz before keeps its users' holds and tokens.
    const run = Date.now().toString(36);
    const admit = async (userId: string) => {
      const { token } = await queue.joinQueue({ concertId: concert.id, userId });
      await retry(`admission of ${userId}`, 120_000, async () =>
        (await queue.getQueueStatus({ token })).status?.state === QueueState.ACTIVE ? true : undefined,
      );
      return { userId, token };
    };
    const crowd = (kind: string, count: number) =>
      Promise.all(Array.from({ length: count }, (_, i) => admit(`ghz-${run}-${kind}-${i}`)));
    const holdConfig = configFor("ReserveSeat");
    const payConfig = configFor("PayReservation");
    const [reader, holders, payers] = await Promise.all([
      admit(`ghz-${run}-reader`),
      crowd("holder", holdConfig.concurrency),
      crowd("payer", payConfig.concurrency),
    ]);

    const { schedules } = await booking.listSchedules(
      { concertId: concert.id, pageSize: 500 },
      withToken(reader.token),
    );
    const freeSeats = async (scheduleId: string, count: number) =>
      (await booking.listSeats({ scheduleId, pageSize: 1000 }, withToken(reader.token))).seats
        .filter((seat) => seat.status === SeatStatus.AVAILABLE)
        .slice(0, count);
    const pending = [...schedules];
    const takeSeats = async (count: number, users: number) => {
      const seats: Seat[] = [];
      const perSchedule = users * SEATS_PER_USER_PER_SCHEDULE;
      while (seats.length < count && pending.length > 0)
        seats.push(...(await freeSeats(pending.shift()!.id, Math.min(perSchedule, count - seats.length))));
      if (seats.length < count)
        throw new Error(`the catalog has ${seats.length} free seats for ${count} calls; seed more schedules or seats`);
      return seats;
    };
    const whole = (count: number, users: number) => Math.floor(count / users) * users;
    const holdRows = inTurn(await takeSeats(whole(size.holds, holders.length), holders.length), holders).map(
      ({ row }) => row,
    );
    const payerSeats = inTurn(await takeSeats(whole(size.payments, payers.length), payers.length), payers);
    const paymentRows = await holdForPayers(booking, wallet, payerSeats);

    const scalars: Scalars = { CONCERT_ID: concert.id, SCHEDULE_ID: schedules[0]!.id, QUEUE_TOKEN: reader.token };
    mkdirSync(outDir, { recursive: true });
    const configs: Record<string, string> = {};
    for (const { file, config } of loadGhzConfigs()) {
      const rows = JSON.stringify(config).includes("${SEAT_ID}") ? holdRows : paymentRows;
      const filled = fillConfig(config, host, scalars, usesRows(config) ? rows : [], size.duration);
      configs[file] = join(outDir, file);
      writeFileSync(configs[file], `${JSON.stringify(filled, null, 2)}\n`);
    }
    return { configs, concertId: concert.id, holdRows, paymentRows };
  } finally {
    queue.close();
    booking.close();
    wallet.close();
  }
}

/** Each payer tops up what its seats cost and holds them; the rows keep the seats' turn order. */
async function holdForPayers(
  booking: GrpcClient<typeof BookingService>,
  wallet: GrpcClient<typeof WalletService>,
  rows: SeatRow[],
): Promise<Row[]> {
  const byUser = Map.groupBy(rows, ({ row }) => row.USER_ID!);
  const reservationOf = new Map<string, string>();
  await Promise.all(
    [...byUser.values()].map(async (mine) => {
      const { USER_ID: userId, USER_TOKEN: token } = mine[0]!.row;
      let owed = mine.reduce((sum, { seat }) => sum + (seat.price?.amountMinor ?? 0n), 0n);
      for (let i = 0; owed > 0n; i++) {
        const amountMinor = owed < MAX_TOP_UP_MINOR ? owed : MAX_TOP_UP_MINOR;
        await wallet.topUp({ userId, amount: { amountMinor }, idempotencyKey: `ghz-prepare-${i}` });
        owed -= amountMinor;
      }
      for (const { seat } of mine) {
        const request = { scheduleId: seat.scheduleId, seatId: seat.id, userId, requestId: `ghz-prepare-${seat.id}` };
        const { reservation } = await booking.reserveSeat(request, { metadata: { [QUEUE_TOKEN_HEADER]: token! } });
        reservationOf.set(seat.id, reservation!.id);
      }
    }),
  );
  return rows.map(({ seat, row }) => ({
    RESERVATION_ID: reservationOf.get(seat.id)!,
    USER_ID: row.USER_ID,
    USER_TOKEN: row.USER_TOKEN,
  }));
}
