// PostgreSQL's own counters for one database, before and after a load test, as markdown tables:
// transactions and row operations from pg_stat_database and pg_stat_user_tables (always there),
// and statements from pg_stat_statements when the server preloads it (it needs
// shared_preload_libraries, i.e. a restart: bench/loadtest-cpu.sh can start a private server
// that has it). Deltas by queryid, so nothing is reset and other databases are left alone.
//
//   node --import tsx bench/pg-stats.ts snapshot --url URL --out FILE
//   node --import tsx bench/pg-stats.ts report --before FILE --after FILE --users N --seats N
//     [--pg-cpu-s S] [--totals-out FILE] [--top N]

import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pg from "pg";
import { formatNumber, markdownTable, type BenchTable } from "./report.js";

type Row = Record<string, string | number | null>;
interface Snapshot {
  database: Row;
  tables: Row[];
  /** Absent when pg_stat_statements cannot be read; `why` says so. */
  statements?: Row[];
  why?: string;
}

const DATABASE_COLUMNS = [
  "xact_commit",
  "xact_rollback",
  "tup_returned",
  "tup_fetched",
  "tup_inserted",
  "tup_updated",
  "tup_deleted",
  "blks_hit",
  "blks_read",
  "deadlocks",
] as const;
const TABLE_COLUMNS = ["seq_scan", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del"] as const;

async function snapshot(url: string): Promise<Snapshot> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Counters are flushed by each backend at most once a second (PostgreSQL 15), so read
    // what is in shared memory now rather than a transaction-local cached copy.
    await client.query("set stats_fetch_consistency = none");
    const database = (
      await client.query<Row>(
        `select ${DATABASE_COLUMNS.join(", ")} from pg_stat_database where datname = current_database()`,
      )
    ).rows[0]!;
    const tables = (
      await client.query<Row>(
        `select relname, ${TABLE_COLUMNS.map((c) => `coalesce(${c}, 0) as ${c}`).join(", ")} from pg_stat_user_tables`,
      )
    ).rows;
    const preload = (await client.query<Row>("select current_setting('shared_preload_libraries') as libs")).rows[0]!;
    if (!/\bpg_stat_statements\b/.test(String(preload.libs))) {
      return { database, tables, why: "pg_stat_statements is not in this server's shared_preload_libraries" };
    }
    await client.query("create extension if not exists pg_stat_statements");
    const statements = (
      await client.query<Row>(
        `select queryid::text as queryid, query, calls, total_exec_time + total_plan_time as total_ms, rows
           from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`,
      )
    ).rows;
    return { database, tables, statements };
  } finally {
    await client.end();
  }
}

const num = (value: string | number | null | undefined) => Number(value ?? 0);
const fmt = (value: number, digits = 0) => formatNumber(value, digits);

interface Counts {
  users: number;
  seats: number;
  /** CPU time of the PostgreSQL processes over the same window, if measured. */
  pgCpuS?: number;
}

interface Report {
  tables: BenchTable[];
  transactions: number;
  /** Statements executed, BEGIN and COMMIT included; undefined without pg_stat_statements. */
  statements?: number;
}

function report(before: Snapshot, after: Snapshot, { users, seats, pgCpuS }: Counts, top: number): Report {
  const delta = (column: string) => num(after.database[column]) - num(before.database[column]);
  const transactions = delta("xact_commit") + delta("xact_rollback");
  const cpuPerTransaction =
    pgCpuS === undefined
      ? ""
      : ` PostgreSQL CPU ${fmt((pgCpuS * 1000) / Math.max(transactions, 1), 2)} ms per transaction.`;
  const perRow = (name: string, value: number) => [name, fmt(value), fmt(value / users, 2), fmt(value / seats, 2)];
  const tables: BenchTable[] = [
    {
      title: "PostgreSQL work in the run's database (pg_stat_database)",
      note: `per user: ${fmt(users)} users; per seat: ${fmt(seats)} booked seats. Includes the load test's audit queries.${cpuPerTransaction}`,
      columns: ["counter", "total", "per user", "per seat"],
      rows: DATABASE_COLUMNS.map((c) => perRow(c, delta(c))),
    },
  ];

  const beforeTables = new Map(before.tables.map((t) => [t.relname, t]));
  const tableRows = after.tables
    .map((t) => {
      const was = beforeTables.get(t.relname);
      const d = TABLE_COLUMNS.map((c) => num(t[c]) - num(was?.[c]));
      return { name: String(t.relname), d };
    })
    .filter((t) => t.d.some((v) => v !== 0))
    .sort((a, b) => b.d.reduce((x, y) => x + y, 0) - a.d.reduce((x, y) => x + y, 0));
  tables.push({
    title: "Row operations per booked seat by table (pg_stat_user_tables)",
    note: "Scans and rows inserted/updated/deleted during the run, divided by the booked seats.",
    columns: ["table", ...TABLE_COLUMNS],
    rows: tableRows.map((t) => [t.name, ...t.d.map((v) => fmt(v / seats, 2))]),
  });

  if (!after.statements || !before.statements) {
    tables.push({
      title: "Statements (pg_stat_statements)",
      note: `Not available: ${after.why ?? before.why}. Run with PRIVATE_PG=1 for statement counts and times.`,
      columns: ["statement", "calls"],
      rows: [["(not available)", "–"]],
    });
    return { tables, transactions };
  }
  const earlier = new Map(before.statements.map((s) => [s.queryid, s]));
  const statements = after.statements
    .map((s) => {
      const was = earlier.get(s.queryid);
      return {
        query: String(s.query).replace(/\s+/g, " "),
        calls: num(s.calls) - num(was?.calls),
        totalMs: num(s.total_ms) - num(was?.total_ms),
        rows: num(s.rows) - num(was?.rows),
      };
    })
    .filter((s) => s.calls > 0)
    .sort((a, b) => b.totalMs - a.totalMs);
  const allCalls = statements.reduce((sum, s) => sum + s.calls, 0);
  const allMs = statements.reduce((sum, s) => sum + s.totalMs, 0);
  tables.push({
    title: "Statements (pg_stat_statements)",
    note:
      `${fmt(statements.length)} distinct statements, ${fmt(allCalls)} calls (BEGIN and COMMIT, and the load test's audit, included): ` +
      `${fmt(allCalls / users, 1)} per user, ${fmt(allCalls / seats, 1)} per booked seat; ` +
      `${fmt(allMs / 1000, 1)} s of planning and execution, ${fmt(allMs / seats, 2)} ms per booked seat` +
      (pgCpuS === undefined
        ? "."
        : `; PostgreSQL CPU ${fmt((pgCpuS * 1e6) / Math.max(allCalls, 1))} µs per statement.`),
    columns: ["statement (normalized)", "calls", "per seat", "total ms", "mean ms", "share"],
    rows: statements
      .slice(0, top)
      .map((s) => [
        `\`${s.query.length > 180 ? `${s.query.slice(0, 177)}...` : s.query}\``,
        fmt(s.calls),
        fmt(s.calls / seats, 2),
        fmt(s.totalMs),
        fmt(s.totalMs / s.calls, 3),
        `${fmt((s.totalMs / Math.max(allMs, 1e-9)) * 100, 1)} %`,
      ]),
  });
  return { tables, transactions, statements: allCalls };
}

const [command] = process.argv.slice(2, 3);
const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    url: { type: "string" },
    out: { type: "string" },
    before: { type: "string" },
    after: { type: "string" },
    users: { type: "string" },
    seats: { type: "string" },
    "pg-cpu-s": { type: "string" },
    "totals-out": { type: "string" },
    top: { type: "string", default: "15" },
  },
});
const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Snapshot;
try {
  if (command === "snapshot" && values.url && values.out) {
    writeFileSync(values.out, JSON.stringify(await snapshot(values.url)));
  } else if (command === "report" && values.before && values.after && values.users && values.seats) {
    const counts = {
      users: Math.max(1, Number(values.users)),
      seats: Math.max(1, Number(values.seats)),
      pgCpuS: values["pg-cpu-s"] === undefined ? undefined : Number(values["pg-cpu-s"]),
    };
    const { tables, transactions, statements } = report(
      read(values.before),
      read(values.after),
      counts,
      Number(values.top),
    );
    process.stdout.write(tables.map(markdownTable).join("\n"));
    // For the profile summary: what the server's PostgreSQL client work is divided by.
    if (values["totals-out"]) writeFileSync(values["totals-out"], `${transactions} ${statements ?? ""}\n`);
  } else {
    process.stderr.write(
      "usage: pg-stats.ts snapshot --url URL --out FILE | report --before F --after F --users N --seats N\n",
    );
    process.exit(2);
  }
} catch (error) {
  process.stderr.write(`pg-stats: ${(error as Error).message}\n`);
  process.exit(1);
}
