// Calls suite: the six calls of ghz-bench/configs (JoinQueue, GetQueueStatus, ListSeats,
// ReserveSeat, TopUp, PayReservation) through a grpc-js client against the real server, started
// as its own process (src/main.ts) with WORKERS=1 and WORKERS=2, so the load generator and the
// server are apart as they are with ghz. The same run also measures a bare grpc-js server
// answering a constant ListConcerts with the same client: the machine is shared, and that figure
// says how fast it was at the time.
//
//   npm run bench -- --suite calls [--duration S] [--concurrency N] [--rounds N] [--workers 1,2]
//
// Like the ghz configs, this suite spreads the booking calls over admitted users (here USERS of
// them), each with their own token and wallet, as a flash crowd does. ReserveSeat holds a
// different free seat per request; PayReservation pays the holds that ReserveSeat made, in order.

import { randomBytes } from "node:crypto";
import { removeRedisKeys } from "../src/loadtest/redis-cleanup.js";
import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueState } from "../gen/concert/v1/queue_pb.js";
import { startLocalServer, seedTarget, type LocalServer } from "../src/loadtest/local-server.js";
import { createClients } from "../src/loadtest/grpc-js-clients.js";
import type { Clients } from "../src/loadtest/virtual-user.js";
import { QUEUE_TOKEN_HEADER } from "../src/queue/admission-context.js";
import { createGrpcClient } from "../src/platform/rpc/grpc-client.js";
import { createTestDatabase } from "../test/helpers/database.js";
import { CALL_TABLE_COLUMNS, formatNumber, formatRuns, type BenchTable, type SuiteOptions } from "./report.js";
import { closedLoop } from "./closed-loop.js";
import { median } from "./stats.js";
import { startServer } from "./transport/child.js";
import { LIST_CONCERTS_REQUEST } from "./transport/noop.js";

export interface CallsBenchOptions extends SuiteOptions {
  rounds?: number;
  /** Server process counts to compare (default [1, 2]). */
  workers?: readonly number[];
}

/**
 * Admitted users the booking calls are spread over; each holds at most MAX_SEATS_PER_USER per
 * schedule and pays once (a payment uses the token up), so PayReservation runs at most USERS calls.
 */
const USERS = 3000;
const MAX_SEATS_PER_USER = 100;
/** Channels (HTTP/2 connections) of the load generator: node:cluster spreads connections, not calls. */
const CHANNELS = 8;
/** The Spring/JPA reference of the same flow on 2 vCPUs, as the booking issue (5) quotes it; not measured here. */
const SPRING_REFERENCE = { ReserveSeat: 1800, PayReservation: 900 } as const;
const CALLS = ["JoinQueue", "GetQueueStatus", "ListSeats", "ReserveSeat", "TopUp", "PayReservation"] as const;
type Call = (typeof CALLS)[number];

interface Measured {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
}

/** `op(i)` from `concurrency` callers until the time is up or `limit` calls started. */
async function drive(
  concurrency: number,
  durationSec: number,
  op: (i: number) => Promise<unknown>,
  limit?: number,
): Promise<Measured> {
  const { okPerSec, p50Ms, p99Ms, errors, firstError } = await closedLoop({
    concurrency,
    durationMs: durationSec * 1000,
    op,
    limit,
  });
  return {
    reqPerSec: okPerSec,
    p50Ms,
    p99Ms,
    errors,
    firstError: firstError === undefined ? undefined : (firstError as Error).message,
  };
}

const pick = <T>(list: readonly T[], i: number): T => list[i % list.length]!;

/** Joins USERS users, waits until every one is ACTIVE and funds their wallets. */
async function admitUsers(
  clients: Clients[],
  concertId: string,
  tag: string,
): Promise<{ userId: string; token: string }[]> {
  const users = Array.from({ length: USERS }, (_, i) => ({ userId: `bench-${tag}-${i}`, token: "" }));
  await Promise.all(
    users.map(async (user, i) => {
      user.token = (await pick(clients, i).queue.joinQueue({ concertId, userId: user.userId })).token;
    }),
  );
  const deadline = Date.now() + 60_000;
  for (let waiting = users; waiting.length > 0;) {
    if (Date.now() > deadline) throw new Error(`${waiting.length} of ${USERS} users were not admitted within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const states = await Promise.all(waiting.map((u, i) => pick(clients, i).queue.getQueueStatus({ token: u.token })));
    waiting = waiting.filter((_, i) => states[i]!.status?.state !== QueueState.ACTIVE);
  }
  await Promise.all(
    users.map((user, i) =>
      pick(clients, i).wallet.topUp({
        userId: user.userId,
        amount: { amountMinor: 10_000_000n },
        idempotencyKey: `fund-${tag}`,
      }),
    ),
  );
  return users;
}

/**
 * One server start on a fresh database: every call measured once. Calls that need an ACTIVE
 * token come before PayReservation, which uses a user's token up (the server releases it after
 * the payment): so each user pays once, for the hold ReserveSeat made as its request i < USERS.
 */
async function measureServer(
  server: LocalServer,
  target: { concertId: string; scheduleId: string; seatIds: readonly string[] },
  options: CallsBenchOptions,
): Promise<Record<Call, Measured>> {
  const { pool: clients, close } = createClients(server.target, CHANNELS);
  const tag = randomBytes(3).toString("hex");
  try {
    const users = await admitUsers(clients, target.concertId, tag);
    const withToken = (i: number) => ({ metadata: { [QUEUE_TOKEN_HEADER]: pick(users, i).token } });
    const { concurrency, durationSec } = options;
    const results = {} as Record<Call, Measured>;
    results.GetQueueStatus = await drive(concurrency, durationSec, (i) =>
      pick(clients, i).queue.getQueueStatus({ token: pick(users, i).token }),
    );
    results.ListSeats = await drive(concurrency, durationSec, (i) =>
      pick(clients, i).booking.listSeats({ scheduleId: target.scheduleId, pageSize: 100 }, withToken(i)),
    );
    results.TopUp = await drive(concurrency, durationSec, (i) =>
      pick(clients, i).wallet.topUp({
        userId: pick(users, i).userId,
        amount: { amountMinor: 1000n },
        idempotencyKey: `t-${tag}-${i}`,
      }),
    );
    const holds = new Map<number, string>();
    results.ReserveSeat = await drive(
      concurrency,
      durationSec,
      async (i) => {
        const { reservation } = await pick(clients, i).booking.reserveSeat(
          {
            scheduleId: target.scheduleId,
            seatId: target.seatIds[i]!,
            userId: pick(users, i).userId,
            requestId: `r-${tag}-${i}`,
          },
          withToken(i),
        );
        holds.set(i, reservation!.id);
      },
      Math.min(target.seatIds.length, USERS * MAX_SEATS_PER_USER),
    );
    const payable = [...holds].filter(([i]) => i < users.length);
    results.PayReservation = await drive(
      concurrency,
      durationSec,
      (n) => {
        const [i, reservationId] = payable[n]!;
        return pick(clients, i).wallet.payReservation(
          { reservationId, userId: users[i]!.userId, idempotencyKey: `p-${tag}-${i}` },
          withToken(i),
        );
      },
      payable.length,
    );
    results.JoinQueue = await drive(concurrency, durationSec, (i) =>
      pick(clients, i).queue.joinQueue({ concertId: target.concertId, userId: `join-${tag}-${i}` }),
    );
    return results;
  } finally {
    close();
  }
}

/** The same grpc-js client against a bare grpc-js server answering ListConcerts with a constant. */
async function measureBare(options: CallsBenchOptions): Promise<Measured> {
  const bare = await startServer("bare", { core: "0-1" });
  const clients = Array.from({ length: CHANNELS }, (_, i) =>
    createGrpcClient(BookingService, `127.0.0.1:${bare.ports.grpc}`, { "bench.connection": i }),
  );
  try {
    return await drive(options.concurrency, options.durationSec, (i) =>
      pick(clients, i).listConcerts(LIST_CONCERTS_REQUEST),
    );
  } finally {
    for (const client of clients) client.close();
    await bare.stop();
  }
}

export async function runCallsBench(options: CallsBenchOptions): Promise<BenchTable[]> {
  const rounds = options.rounds ?? 3;
  const workerCounts = options.workers ?? [1, 2];
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  // Enough seats that no ReserveSeat run runs out, whatever its speed.
  const seats = Math.min(1_000_000, 5000 * options.durationSec);
  const runs = new Map<string, Measured[]>();
  const record = (key: string, measured: Measured) => runs.set(key, [...(runs.get(key) ?? []), measured]);
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? workerCounts : [...workerCounts].reverse();
    record("bare", await measureBare(options));
    for (const workers of order) {
      // A fresh database per server: the waiting room rebuilds from PostgreSQL, and the last
      // round's admitted users would still fill the cap.
      const database = await createTestDatabase("bench_calls");
      let redisKeyPrefix: string | undefined;
      try {
        options.log(`calls: round ${round}, WORKERS=${workers}: seeding one schedule of ${seats} seats`);
        const { concertId, scheduleId } = await seedTarget(database.url, seats);
        const target = { concertId, scheduleId, seatIds: await listSeatIds(database.url, scheduleId) };
        redisKeyPrefix = `bench-calls:${randomBytes(4).toString("hex")}:`;
        const server = await startLocalServer({
          databaseUrl: database.url,
          redisUrl,
          redisKeyPrefix,
          maxActiveUsers: USERS,
          admissionIntervalMs: 50,
          workers,
          logLevel: "warn",
          childProcess: true,
          env: { MAX_SEATS_PER_USER: String(MAX_SEATS_PER_USER) },
        });
        try {
          const results = await measureServer(server, target, options);
          for (const call of CALLS) {
            record(`${call}\u0000${workers}`, results[call]);
            if (results[call].firstError)
              options.log(
                `calls: ${results[call].errors} errors in ${call} (WORKERS=${workers}), first: ${results[call].firstError}`,
              );
          }
          options.log(
            `calls: round ${round}, WORKERS=${workers}: ${CALLS.map((c) => `${c} ${formatNumber(results[c].reqPerSec)}/s`).join(", ")}`,
          );
        } finally {
          await server.stop();
        }
      } finally {
        await database.drop();
        // The round's queue, token and event-stream keys, like its database.
        if (redisKeyPrefix) await removeRedisKeys(redisUrl, redisKeyPrefix);
      }
    }
  }
  return tables(runs, workerCounts, options, rounds);
}

async function listSeatIds(databaseUrl: string, scheduleId: string): Promise<string[]> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // Shuffled, so consecutive holds do not touch neighbouring index pages only.
    const { rows } = await client.query<{ id: string }>(
      "select id from seat where schedule_id = $1 order by md5(id::text)",
      [scheduleId],
    );
    return rows.map((r) => r.id);
  } finally {
    await client.end();
  }
}

function tables(
  runs: Map<string, Measured[]>,
  workerCounts: readonly number[],
  options: CallsBenchOptions,
  rounds: number,
): BenchTable[] {
  const typical = (key: string): Measured => {
    const measured = [...runs.get(key)!].sort((a, b) => a.reqPerSec - b.reqPerSec);
    const mid = measured[Math.ceil(measured.length / 2) - 1]!;
    return { ...mid, errors: measured.reduce((sum, m) => sum + m.errors, 0) };
  };
  const rate = (key: string) => formatRuns(runs.get(key)!.map((m) => m.reqPerSec));
  const bare = typical("bare");
  const rows: (string | number)[][] = [
    [
      "ListConcerts, constant answer",
      "bare grpc-js (baseline)",
      rate("bare"),
      formatNumber(bare.p50Ms, 2),
      formatNumber(bare.p99Ms, 2),
      bare.errors,
    ],
  ];
  for (const call of CALLS) {
    for (const workers of workerCounts) {
      const m = typical(`${call}\u0000${workers}`);
      rows.push([
        call,
        `gRPC port, WORKERS=${workers}`,
        rate(`${call}\u0000${workers}`),
        formatNumber(m.p50Ms, 2),
        formatNumber(m.p99Ms, 2),
        m.errors,
      ]);
    }
  }
  const spring = (Object.keys(SPRING_REFERENCE) as (keyof typeof SPRING_REFERENCE)[]).map((call) => [
    call,
    ...workerCounts.map((w) => formatNumber(median(runs.get(`${call}\u0000${w}`)!.map((m) => m.reqPerSec)))),
    formatNumber(SPRING_REFERENCE[call]),
  ]);
  return [
    {
      title: "Calls through the gRPC port (the ghz-bench calls, in-repo grpc-js load generator)",
      note:
        `grpc-js client, ${options.concurrency} calls in flight over ${CHANNELS} connections, ${options.durationSec} s per call; req/s is the median (min–max) of ${rounds} rounds, ` +
        `p50/p99 from the median round, errors summed over rounds. The server is src/main.ts as a child process (WORKERS=n) on a fresh database and Redis prefix per round; ` +
        `booking and wallet calls are spread over ${USERS} admitted users (MAX_SEATS_PER_USER=${MAX_SEATS_PER_USER}); ReserveSeat holds a different seat per request and PayReservation pays those holds. ` +
        "Load generator, server processes, PostgreSQL and Redis share the machine's 2 cores.",
      columns: CALL_TABLE_COLUMNS,
      rows,
    },
    {
      title: "Holds and payments per second against the Spring/JPA reference",
      note: "Medians of the rows above; the Spring figures are the reference design's for the same flow on 2 vCPUs, as the issue quotes them (not measured here).",
      columns: ["call", ...workerCounts.map((w) => `WORKERS=${w} req/s`), "Spring reference req/s"],
      rows: spring,
    },
  ];
}
