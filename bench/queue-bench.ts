// Queue suite: JoinQueue/s and GetQueueStatus/s through the real application (grpc-js port,
// queue-token-free calls), and what a flash crowd costs PostgreSQL: statements per 1,000 joins,
// counted by the waiting room's own statement counter and, independently, by PostgreSQL
// (pg_stat_database commits of the bench database). The server and the load generator share
// this one Node process, as the test harness does, so figures are a floor for a dedicated server.
//
//   node --import tsx bench/queue-bench.ts [--duration S] [--concurrency N]
//   npm run bench -- --suite queue

import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueService } from "../gen/concert/v1/queue_pb.js";
import { startApp } from "../src/app.js";
import { seedCatalog } from "../src/platform/db/seed.js";
import { createLogger } from "../src/platform/logger.js";
import { removeRedisKeys } from "../src/loadtest/redis-cleanup.js";
import { createGrpcClient, type GrpcClient } from "../src/platform/rpc/grpc-client.js";
import { createTestDatabase } from "../test/helpers/database.js";
import { CALL_TABLE_COLUMNS, formatNumber, markdownTable, type BenchTable, type SuiteOptions } from "./report.js";
import { closedLoop, type ClosedLoopResult } from "./closed-loop.js";
import { benchConfig } from "./bench-config.js";

export interface QueueBenchRow {
  call: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  calls: number;
  errors: number;
}

/** `op(i)` from `concurrency` callers until `durationSec` has passed. */
const drive = (
  concurrency: number,
  durationSec: number,
  op: (i: number) => Promise<unknown>,
): Promise<ClosedLoopResult> => closedLoop({ concurrency, durationMs: durationSec * 1000, op });

function row(call: string, load: ClosedLoopResult): QueueBenchRow {
  return { call, reqPerSec: load.okPerSec, p50Ms: load.p50Ms, p99Ms: load.p99Ms, calls: load.ok, errors: load.errors };
}

async function commits(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // Statistics are flushed to the shared view at transaction end and cached per transaction.
    await client.query("select pg_stat_clear_snapshot()");
    const { rows } = await client.query<{ n: string }>(
      "select xact_commit::text as n from pg_stat_database where datname = current_database()",
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

export async function runQueueBench(options: SuiteOptions): Promise<BenchTable[]> {
  const database = await createTestDatabase("queue_bench");
  const config = benchConfig(database.url, "bench", {
    // Admission would add its own (batched) statements; this suite measures joins and polls.
    admissionIntervalMs: 3_600_000,
    waitingTokenTtlSeconds: 3600,
  });
  const app = await startApp(config, createLogger(config.logLevel, { bench: "queue" }));
  const clients: GrpcClient<typeof QueueService>[] = [];
  try {
    await seedCatalog(app.orm.em.fork(), { concerts: 1, schedules: 1, seats: 10 });
    const address = `127.0.0.1:${app.grpcPort}`;
    // Separate channels (distinct options) so calls spread over several HTTP/2 connections.
    for (let i = 0; i < 4; i++) clients.push(createGrpcClient(QueueService, address, { "grpc.bench-channel": i }));
    const booking = createGrpcClient(BookingService, address);
    const concertId = (await booking.listConcerts({})).concerts[0]!.id;
    booking.close();

    const warm = await drive(options.concurrency, 1, (i) =>
      clients[i % 4]!.joinQueue({ concertId, userId: `warm-${i}` }),
    );
    options.log(`queue: warm-up ${warm.ok} joins`);

    const statementsBefore = app.waitingRoom.pgStatements;
    const commitsBefore = await commits(database.url);
    const tokens: string[] = [];
    const joins = await drive(options.concurrency, options.durationSec, async (i) => {
      const { token } = await clients[i % 4]!.joinQueue({ concertId, userId: `user-${i}` });
      tokens.push(token);
    });
    const statements = app.waitingRoom.pgStatements - statementsBefore;
    const committed = (await commits(database.url)) - commitsBefore;
    options.log(`queue: ${joins.ok} joins, ${joins.errors} errors`);

    const polls = await drive(options.concurrency, options.durationSec, (i) =>
      clients[i % 4]!.getQueueStatus({ token: tokens[(i * 7919) % tokens.length]! }),
    );
    options.log(`queue: ${polls.ok} polls, ${polls.errors} errors`);
    if (joins.firstError ?? polls.firstError)
      options.log(`queue: first error: ${String(joins.firstError ?? polls.firstError)}`);

    const rows = [row("JoinQueue", joins), row("GetQueueStatus", polls)];
    const perThousand = (n: number) => (n * 1000) / joins.ok;
    return [
      {
        title: "Waiting room calls (grpc-js client, in-process server)",
        note: `${options.concurrency} calls in flight over 4 channels, ${options.durationSec} s each; one concert; GetQueueStatus polls random tokens of the ${formatNumber(tokens.length)} joined.`,
        columns: CALL_TABLE_COLUMNS,
        rows: rows.map((r) => [
          r.call,
          "grpc",
          formatNumber(r.reqPerSec),
          formatNumber(r.p50Ms, 2),
          formatNumber(r.p99Ms, 2),
          r.errors,
        ]),
      },
      {
        title: "PostgreSQL cost of JoinQueue (group commit)",
        note: "Counted during the JoinQueue run only. Commits include the app's background work (health check every 2 s, outbox relay, hold sweeper).",
        columns: [
          "joins",
          "waiting-room statements",
          "per 1,000 joins",
          "PostgreSQL commits (pg_stat_database)",
          "per 1,000 joins",
        ],
        rows: [
          [
            formatNumber(joins.ok),
            formatNumber(statements),
            formatNumber(perThousand(statements), 1),
            formatNumber(committed),
            formatNumber(perThousand(committed), 1),
          ],
        ],
      },
    ];
  } finally {
    for (const client of clients) client.close();
    await app.stop();
    await database.drop();
    await removeRedisKeys(config.redisUrl, config.redisKeyPrefix);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: { duration: { type: "string", default: "5" }, concurrency: { type: "string", default: "64" } },
  });
  const tables = await runQueueBench({
    durationSec: Number(values.duration),
    concurrency: Number(values.concurrency),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(tables.map(markdownTable).join("\n"));
  process.exit(0);
}
