// Queue suite: JoinQueue/s and GetQueueStatus/s through the real application (grpc-js port,
// queue-token-free calls), and what a flash crowd costs PostgreSQL: statements per 1,000 joins,
// counted by the waiting room's own statement counter and, independently, by PostgreSQL
// (pg_stat_database commits of the bench database). The server and the load generator share
// this one Node process, as the test harness does, so figures are a floor for a dedicated server.
//
//   node --import tsx bench/queue-bench.ts [--duration S] [--concurrency N] [--join-paths]
//   npm run bench -- --suite queue
//
// --join-paths instead measures the PostgreSQL side of a join two ways, on one line that grows
// through the run: the group commit of joins whose place Redis numbered (today's path), and the
// PostgreSQL-numbered join of the fallback (a concert lock per batch), which is what making
// PostgreSQL the record of the line would put on every join (docs/architecture.md).

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
import { createBatcher } from "../src/platform/batcher.js";
import { closeORM, initORM, migrateUp } from "../src/platform/db/orm.js";
import { createJoinCommitter } from "../src/queue/join-committer.js";
import { createPgQueue, type JoinRequest } from "../src/queue/pg-queue.js";
import { createQueueDb } from "../src/queue/queue-db.js";
import { QueueEntry } from "../src/queue/queue-entry.entity.js";
import type { QueueStatus } from "../src/queue/queue-status.js";

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

/** Joins per second and statements per 1,000 joins of the two PostgreSQL join paths. */
export async function runJoinPathBench(options: SuiteOptions): Promise<BenchTable[]> {
  const database = await createTestDatabase("queue_join_paths");
  const { orm } = await initORM({ databaseUrl: database.url, entities: [QueueEntry], poolMax: 16 });
  try {
    await migrateUp(orm);
    let statements = 0;
    const db = await createQueueDb(orm, () => statements++);
    const pg = createPgQueue(db);
    const window = { maxItems: 1000, maxDelayMs: 20 };
    const committer = createJoinCommitter({ db, maxRows: window.maxItems, maxDelayMs: window.maxDelayMs });
    const concertId = crypto.randomUUID();
    let seq = 0;
    const redisNumbered = (i: number) =>
      committer.commit({
        token: crypto.randomUUID(),
        concertId,
        userId: `r-${i}`,
        seq: String(++seq),
        state: "WAITING",
        joinedAtMs: Date.now(),
        activeExpireMs: 0,
      });
    const pgConcert = crypto.randomUUID();
    const pgJoins = createBatcher<JoinRequest, QueueStatus>({ ...window, run: pg.joinMany });
    const pgNumbered = (i: number) =>
      pgJoins.submit({ concertId: pgConcert, userId: `p-${i}`, freshToken: crypto.randomUUID() });
    const rows: (string | number)[][] = [];
    for (const [name, op] of [
      ["Redis-numbered, group commit (today)", redisNumbered],
      ["PostgreSQL-numbered, concert lock (fallback joinMany)", pgNumbered],
    ] as const) {
      const before = statements;
      const load = await drive(options.concurrency, options.durationSec, op);
      options.log(`join paths: ${name}: ${load.ok} joins, ${load.errors} errors`);
      rows.push([
        name,
        formatNumber(load.okPerSec),
        formatNumber(load.p50Ms, 2),
        formatNumber(load.p99Ms, 2),
        formatNumber(((statements - before) * 1000) / Math.max(1, load.ok), 1),
        load.errors,
      ]);
    }
    return [
      {
        title: "PostgreSQL side of JoinQueue: who numbers the line",
        note: `${options.concurrency} joins in flight, ${options.durationSec} s each, one concert per path (its line grows through the run); group commit window ${window.maxDelayMs} ms / ${window.maxItems} rows.`,
        columns: ["path", "joins/s", "p50 ms", "p99 ms", "statements per 1,000 joins", "errors"],
        rows,
      },
    ];
  } finally {
    await closeORM(orm);
    await database.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: {
      duration: { type: "string", default: "5" },
      concurrency: { type: "string", default: "64" },
      "join-paths": { type: "boolean", default: false },
    },
  });
  const tables = await (values["join-paths"] ? runJoinPathBench : runQueueBench)({
    durationSec: Number(values.duration),
    concurrency: Number(values.concurrency),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(tables.map(markdownTable).join("\n"));
  process.exit(0);
}
