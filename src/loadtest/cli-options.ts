// Command line of `npm run loadtest`: node:util parseArgs, validation, and the usage text.
// Store URLs, the key prefix and the admission settings default to the same environment
// variables the server reads (src/config.ts), so a shell that runs the server runs the test.

import { parseArgs } from "node:util";
import { loadConfig, type Config } from "../config.js";
import { parseArrival } from "./arrival.js";
import { parseFaultSpec, type FaultSpec } from "./faults.js";
import type { LoadTestOptions } from "./run-load-test.js";
import type { SeatPick } from "./virtual-user.js";

export interface CliOptions {
  run: Omit<LoadTestOptions, "onProgress" | "log">;
  seed: boolean;
  seats: number;
  startServer: boolean;
  freshDatabase: boolean;
  keepDatabase: boolean;
  /** The key prefix was chosen for this run (not given), so its keys may be removed afterwards. */
  ownRedisPrefix: boolean;
  admissionIntervalMs: number;
  /** EXPECTED_SESSION_SECONDS of the started server: the wait estimate's prior. */
  expectedSessionSeconds: number;
  workers: number;
  serverLogLevel: Config["logLevel"];
  faults: FaultSpec[];
  jsonFile?: string;
  htmlFile?: string;
  /** --trace-estimates: where the server's estimate trace and the users' answers go. */
  traceEstimatesDir?: string;
  /** --warm-up: users run on demo concert 2 before the measured run (0: none). */
  warmUpUsers: number;
}

export const USAGE = `usage: npm run loadtest -- [options]

Simulates the LoadTest5 crowd: N virtual users each JoinQueue → WatchQueue until ACTIVE → TopUp →
ReserveSeat on a random seat → PayReservation, then audits PostgreSQL and the Redis event stream.

load
  --users N                 virtual users (10000)
  --concurrency N           users in flight at once; the rest wait to start (2000)
  --arrival A               closed: --concurrency users in flight; burst: all users start at
                            once; ramp:<seconds>: users start evenly over that time (closed)
  --seat-pick MODE          random-once: one random seat, SEAT_UNAVAILABLE = lost to collision;
                            retry-another-seat: up to --seat-retries more seats (random-once)
  --seat-retries N          extra seats tried with retry-another-seat (3)
  --rpc-timeout-ms N        deadline of each unary call (15000)
  --timeout S               the whole run, in seconds (300)
  --connections N           gRPC connections the users are spread over (32)
  --run-id ID               id in every user id lt-<ID>-<n> (random)

target
  --target HOST:PORT        gRPC address of the server (127.0.0.1:50051)
  --concert ID              concert (the first of ListConcerts)
  --schedule ID             schedule (the concert's first)
  --seed                    seed or grow demo concert 1 to one schedule of --seats seats, and target it
  --seats N                 seats for --seed (50000)
  --warm-up N               with --seed: first run N users the same way on demo concert 2 (seeded
                            alike), left out of the report, so the measured crowd meets a server
                            whose code V8 has already compiled, as one in service has (0)

local server
  --start-server            run the server in this process (worker thread) on free ports
  --fresh-database          with --start-server: a new database loadtest_<run> next to
                            --database-url, seeded; dropped afterwards unless --keep-database
  --keep-database           keep the fresh database and the run's Redis keys
  --max-active N            the server's MAX_ACTIVE_USERS: what --start-server sets and what the
                            audit checks against ($MAX_ACTIVE_USERS or 1000)
  --admission-interval-ms N ADMISSION_INTERVAL_MS of the started server ($ADMISSION_INTERVAL_MS or 1000)
  --expected-session-seconds N
                            EXPECTED_SESSION_SECONDS of the started server, the wait estimate's
                            prior ($EXPECTED_SESSION_SECONDS or 2: these users are scripts; the
                            report's "session" row shows what theirs took)
  --workers N               server processes (node:cluster; > 1 runs src/main.ts as a child) (1)
  --server-log-level L      log level of the started server, to stderr (warn)

faults (with --start-server; repeatable; AT counts from the users' start; docs/loadtest.md)
  --fault redis-outage[@AT[:FOR]]     the server uses a private redis-server (append-only file,
                                      like production), killed at AT (5s) and restarted FOR (10s) later
  --fault postgres-outage[@AT[:FOR]]  the server reaches PostgreSQL through a proxy that drops every
                                      connection at AT (5s; later if no user is booking then) and
                                      refuses new ones for FOR (2s)
  --fault worker-kill[@AT]            SIGKILL one worker process at AT (5s); needs --workers 2 or more

audit and output
  --database-url URL        PostgreSQL of the server ($DATABASE_URL)
  --redis-url URL           Redis of the server ($REDIS_URL; $REDIS_CLUSTER_NODES for a Redis Cluster)
  --redis-key-prefix P      the server's REDIS_KEY_PREFIX ($REDIS_KEY_PREFIX; lt:<run>: with --start-server)
  --no-audit                skip the audit
  --json FILE               write the full report as JSON
  --html FILE               write a self-contained HTML report with charts
  --trace-estimates DIR     with --start-server (one worker): record what every wait estimate was
                            computed from (DIR/server.jsonl) and every user's answers
                            (DIR/users.json), for \`npm run replay-estimates -- --trace DIR\`
  --help, -h                this text

Exit status: 0 every audited invariant holds (and every --fault happened), 1 one does not (or a
fault did not happen), 2 bad usage, 3 fatal error.`;

export class UsageError extends Error {
  override name = "UsageError";
}

function positiveInteger(name: string, text: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${text}"`);
  return Number(text);
}

/**
 * The started server's expected session unless told: a virtual user tops up, holds and pays in
 * a second or two even under the 10,000-user burst on 2 cores (the report's "session" row says
 * what this run's users took; a slower machine wants more).
 */
export const SCRIPTED_SESSION_SECONDS = 2;

/** Node timers take at most 2^31 − 1 ms; a longer --timeout would fire at once. */
const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** Parses argv; returns undefined when --help was asked for. */
export function parseCli(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  runId: string,
): CliOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        users: { type: "string", default: "10000" },
        concurrency: { type: "string", default: "2000" },
        arrival: { type: "string", default: "closed" },
        "seat-pick": { type: "string", default: "random-once" },
        "seat-retries": { type: "string", default: "3" },
        "rpc-timeout-ms": { type: "string", default: "15000" },
        timeout: { type: "string", default: "300" },
        connections: { type: "string", default: "32" },
        "run-id": { type: "string" },
        target: { type: "string", default: "127.0.0.1:50051" },
        concert: { type: "string" },
        schedule: { type: "string" },
        seed: { type: "boolean", default: false },
        seats: { type: "string", default: "50000" },
        "start-server": { type: "boolean", default: false },
        "fresh-database": { type: "boolean", default: false },
        "keep-database": { type: "boolean", default: false },
        "max-active": { type: "string" },
        "admission-interval-ms": { type: "string" },
        "expected-session-seconds": { type: "string" },
        workers: { type: "string", default: "1" },
        "server-log-level": { type: "string", default: "warn" },
        fault: { type: "string", multiple: true, default: [] },
        "database-url": { type: "string" },
        "redis-url": { type: "string" },
        "redis-key-prefix": { type: "string" },
        "no-audit": { type: "boolean", default: false },
        json: { type: "string" },
        html: { type: "string" },
        "trace-estimates": { type: "string" },
        "warm-up": { type: "string", default: "0" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return undefined;

  const server = loadConfig(env);
  const arrival = parseArrival(values.arrival);
  if (!arrival) throw new UsageError(`--arrival must be closed, burst or ramp:<seconds>, got "${values.arrival}"`);
  const seatPick = values["seat-pick"];
  if (seatPick !== "random-once" && seatPick !== "retry-another-seat")
    throw new UsageError(`--seat-pick must be random-once or retry-another-seat, got "${seatPick}"`);
  if (!/^[^:\s]+:\d+$/.test(values.target)) throw new UsageError(`--target must be host:port, got "${values.target}"`);
  if (values["fresh-database"] && !values["start-server"])
    throw new UsageError("--fresh-database needs --start-server (the server must use the new database)");
  const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
  const serverLogLevel = values["server-log-level"] as Config["logLevel"];
  if (!logLevels.includes(serverLogLevel))
    throw new UsageError(`--server-log-level must be one of ${logLevels.join(", ")}`);
  const id = values["run-id"] ?? runId;
  if (!/^[a-z0-9]{1,16}$/.test(id))
    throw new UsageError(`--run-id must be 1-16 lowercase letters or digits, got "${id}"`);

  let faults: FaultSpec[];
  try {
    faults = values.fault.map(parseFaultSpec);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // One fault of a kind at a time: a second redis-outage inside the first would start a second
  // redis-server on the port of the first, and lose track of one of them.
  const byStart = [...faults].sort((a, b) => a.atMs - b.atMs);
  for (const [i, fault] of byStart.entries()) {
    const overlapping = byStart
      .slice(0, i)
      .find((f) => f.kind === fault.kind && f.durationMs > 0 && fault.atMs <= f.atMs + f.durationMs);
    if (overlapping)
      throw new UsageError(
        `--fault ${fault.kind} faults must not overlap (one starts at ${fault.atMs} ms, before the one at ${overlapping.atMs} ms has ended)`,
      );
  }
  const workers = positiveInteger("workers", values.workers);
  if (faults.length > 0 && !values["start-server"])
    throw new UsageError(
      "--fault needs --start-server: faults are injected into the server this run starts, never into shared ones",
    );
  if (faults.some((f) => f.kind === "worker-kill") && workers < 2)
    throw new UsageError("--fault worker-kill needs --workers 2 or more");
  if (faults.some((f) => f.kind === "redis-outage") && values["redis-url"] !== undefined)
    throw new UsageError("--fault redis-outage runs its own redis-server; drop --redis-url");
  if (faults.some((f) => f.kind === "redis-outage") && server.redisClusterNodes.length > 0)
    throw new UsageError("--fault redis-outage runs its own single redis-server; unset REDIS_CLUSTER_NODES");

  if (values["trace-estimates"] !== undefined && (!values["start-server"] || workers > 1))
    throw new UsageError("--trace-estimates needs --start-server with one worker: the trace is the server thread's");

  const warmUpUsers = positiveInteger("warm-up", values["warm-up"], 0);
  if (warmUpUsers > 0 && !(values.seed || values["fresh-database"]))
    throw new UsageError(
      "--warm-up needs --seed (or --fresh-database): its users run on demo concert 2, seeded for them",
    );

  const ownRedisPrefix = values["start-server"] && values["redis-key-prefix"] === undefined;
  return {
    run: {
      target: values.target,
      users: positiveInteger("users", values.users),
      concurrency: positiveInteger("concurrency", values.concurrency),
      arrival,
      concertId: values.concert,
      scheduleId: values.schedule,
      seatPick: seatPick as SeatPick,
      seatRetries: positiveInteger("seat-retries", values["seat-retries"], 0),
      rpcTimeoutMs: positiveInteger("rpc-timeout-ms", values["rpc-timeout-ms"], 100),
      timeoutMs: positiveInteger("timeout", values.timeout, 1, MAX_TIMEOUT_SECONDS) * 1000,
      connections: positiveInteger("connections", values.connections),
      maxActiveUsers: values["max-active"]
        ? positiveInteger("max-active", values["max-active"])
        : server.maxActiveUsers,
      databaseUrl: values["database-url"] ?? server.databaseUrl,
      redisUrl: values["redis-url"] ?? server.redisUrl,
      redisClusterNodes: server.redisClusterNodes,
      redisKeyPrefix: values["redis-key-prefix"] ?? (ownRedisPrefix ? `lt:${id}:` : server.redisKeyPrefix),
      runId: id,
      skipAudit: values["no-audit"],
    },
    seed: values.seed || values["fresh-database"],
    seats: positiveInteger("seats", values.seats),
    startServer: values["start-server"],
    freshDatabase: values["fresh-database"],
    keepDatabase: values["keep-database"],
    ownRedisPrefix,
    admissionIntervalMs: values["admission-interval-ms"]
      ? positiveInteger("admission-interval-ms", values["admission-interval-ms"], 10)
      : server.admissionIntervalMs,
    expectedSessionSeconds: values["expected-session-seconds"]
      ? positiveInteger("expected-session-seconds", values["expected-session-seconds"], 0, 86_400)
      : env.EXPECTED_SESSION_SECONDS
        ? server.expectedSessionSeconds
        : SCRIPTED_SESSION_SECONDS,
    workers,
    serverLogLevel,
    faults,
    jsonFile: values.json,
    htmlFile: values.html,
    traceEstimatesDir: values["trace-estimates"],
    warmUpUsers,
  };
}
