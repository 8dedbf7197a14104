// One-command reproduction support for the CLI: a fresh database next to the given one, a
// seeded concert, and the server itself on free ports. One server process runs startApp on a
// worker thread of this process; WORKERS > 1 needs node:cluster, which forks a process entry,
// so that case runs src/main.ts as a child process instead.

import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import pg from "pg";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { loadConfig, type Config } from "../config.js";
import { ENTITIES } from "../entities.js";
import { closeORM, initORM, migrateUp } from "../platform/db/orm.js";
import { seedCatalog } from "../platform/db/seed.js";
import { createGrpcClient } from "../platform/rpc/grpc-client.js";
import { freePort } from "./free-port.js";
import { byConnections } from "./worker-sockets.js";
import type { ServerThreadData, ServerThreadMessage } from "./server-thread.js";

export interface LocalServerOptions {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  maxActiveUsers: number;
  admissionIntervalMs: number;
  /** EXPECTED_SESSION_SECONDS; the environment's when not given. */
  expectedSessionSeconds?: number;
  workers: number;
  logLevel: Config["logLevel"];
  /** Run src/main.ts as a child process even for one worker (benchmarks: server and load generator apart). */
  childProcess?: boolean;
  /** Further server settings for the child process, e.g. { MAX_SEATS_PER_USER: "100" }. */
  env?: Record<string, string>;
  /** JSON Lines of what every wait estimate is computed from (wait-estimate-trace.ts); a server thread only. */
  estimateTraceFile?: string;
}

export interface LocalServer {
  /** host:port of the gRPC listener. */
  target: string;
  /** The cluster's workers (--workers > 1) with the gRPC connections each holds, busiest first. */
  workers?(): Promise<{ pid: number; connections: number }[]>;
  stop(): Promise<void>;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** Longer than the server's own shutdown grace (SHUTDOWN_GRACE_MS, 10 s by default). */
const STOP_WAIT_MS = 20_000;
/**
 * How long a started server (every cluster worker) may take to serve. Each process compiles the
 * tree through tsx first, which took over 60 s for a two-worker cluster at load 14 on 2 cores.
 */
const START_WAIT_MS = 120_000;

async function withClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database on the same PostgreSQL server; drop() removes it again. */
export async function createFreshDatabase(
  databaseUrl: string,
  runId: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `loadtest_${runId}`;
  await withClient(databaseUrl, (c) => c.query(`create database "${name}" template template0`));
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withClient(databaseUrl, (c) => c.query(`drop database if exists "${name}" with (force)`)).then(() => undefined),
  };
}

export interface SeededTarget {
  concertId: string;
  scheduleId: string;
}

/**
 * Seeds (or grows) the first demo concert to one schedule of `seats` seats and returns its ids;
 * with `warmUp`, the second demo concert too, for a warm-up's crowd (--warm-up). The seeder
 * derives ids from md5 of stable names, so the same query finds them.
 */
export async function seedTarget(
  databaseUrl: string,
  seats: number,
  options: { warmUp?: boolean } = {},
): Promise<SeededTarget & { warmUp?: SeededTarget }> {
  const { orm } = await initORM({ databaseUrl, entities: ENTITIES, poolMax: 2 });
  try {
    await migrateUp(orm);
    const concerts = options.warmUp ? 2 : 1;
    await seedCatalog(orm.em.fork(), { concerts, schedules: 1, seats });
    const ids = await orm.em
      .getConnection()
      .execute<{ concert_id: string; schedule_id: string }[]>(
        "select md5('concert-' || c)::uuid as concert_id, md5('schedule-' || c || '-' || 1)::uuid as schedule_id from generate_series(1, ?::int) as c order by c",
        [concerts],
      );
    const [target, warmUp] = ids.map((row) => ({ concertId: row.concert_id, scheduleId: row.schedule_id }));
    return { ...target!, ...(warmUp && { warmUp }) };
  } finally {
    await closeORM(orm);
  }
}

function serverConfig(options: LocalServerOptions): Config {
  return {
    ...loadConfig(process.env),
    databaseUrl: options.databaseUrl,
    redisUrl: options.redisUrl,
    redisKeyPrefix: options.redisKeyPrefix,
    host: "127.0.0.1",
    port: 0,
    connectPort: 0,
    maxActiveUsers: options.maxActiveUsers,
    admissionIntervalMs: options.admissionIntervalMs,
    ...(options.expectedSessionSeconds === undefined ? {} : { expectedSessionSeconds: options.expectedSessionSeconds }),
    workers: 1,
    seedDemoData: false,
    logLevel: options.logLevel,
  };
}

async function startThread(options: LocalServerOptions): Promise<LocalServer> {
  const workerData: ServerThreadData = { config: serverConfig(options), estimateTraceFile: options.estimateTraceFile };
  const worker = new Worker(new URL("./server-thread.ts", import.meta.url), { workerData });
  const [first] = (await once(worker, "message")) as [ServerThreadMessage];
  if (first.kind !== "ready") {
    await worker.terminate();
    throw new Error(`the server did not start: ${first.kind === "failed" ? first.message : first.kind}`);
  }
  return {
    target: `127.0.0.1:${first.grpcPort}`,
    async stop() {
      // A server stuck on its stores must not keep the CLI from cleaning up.
      const stopped = once(worker, "message");
      worker.postMessage("stop");
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref())]);
      await worker.terminate();
    },
  };
}

async function waitUntilServing(target: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const client = createGrpcClient(BookingService, target);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.listConcerts({ pageSize: 1 }, { deadlineMs: 1000 });
        return;
      } catch (error) {
        if (exited() || Date.now() > deadline)
          throw new Error(`the server at ${target} did not come up: ${(error as Error).message}`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } finally {
    client.close();
  }
}

/** pino's numeric levels. */
const LEVELS: Record<Config["logLevel"], number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

/**
 * Copies the cluster's log lines at `minLevel` or above to stderr (stdout is the report's), and
 * counts the primary's "worker ready" lines. Lines that are not pino JSON (a crash) always pass.
 */
function forwardLogs(streams: NodeJS.ReadableStream[], minLevel: number): { workersReady(): number } {
  let ready = 0;
  for (const stream of streams) {
    createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
      let entry: { level?: unknown; msg?: unknown } | undefined;
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        entry = undefined;
      }
      if (entry?.msg === "worker ready") ready++;
      if (typeof entry?.level !== "number" || entry.level >= minLevel) process.stderr.write(`${line}\n`);
    });
  }
  return { workersReady: () => ready };
}

/** Children of the primary that run the server (tsx also starts an esbuild child, which does not). */
async function clusterWorkerPids(primaryPid: number): Promise<number[]> {
  try {
    const { stdout } = await promisify(execFile)("pgrep", ["-P", String(primaryPid), "-f", "main.ts"]);
    return stdout.split("\n").filter(Boolean).map(Number);
  } catch (error) {
    // pgrep exits with 1 when nothing matches.
    if ((error as { code?: unknown }).code === 1) return [];
    throw new Error(`listing the cluster's workers needs pgrep: ${(error as Error).message}`, { cause: error });
  }
}

async function startCluster(options: LocalServerOptions): Promise<LocalServer> {
  const [port, connectPort] = [await freePort(), await freePort()];
  const config = serverConfig(options);
  const env = {
    ...process.env,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    REDIS_KEY_PREFIX: config.redisKeyPrefix,
    HOST: config.host,
    PORT: String(port),
    CONNECT_PORT: String(connectPort),
    MAX_ACTIVE_USERS: String(config.maxActiveUsers),
    ADMISSION_INTERVAL_MS: String(config.admissionIntervalMs),
    EXPECTED_SESSION_SECONDS: String(config.expectedSessionSeconds),
    WORKERS: String(options.workers),
    SEED_DEMO_DATA: "false",
    // At least info, for the primary's "worker ready" lines; forwardLogs drops what the user did not ask for.
    LOG_LEVEL: LEVELS[config.logLevel] < LEVELS.info ? config.logLevel : "info",
    ...options.env,
  };
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], { env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(child, "exit");
  let done = false;
  void exited.then(() => (done = true));
  const logs = forwardLogs([child.stdout, child.stderr], LEVELS[config.logLevel]);
  const target = `127.0.0.1:${port}`;
  try {
    await waitUntilServing(target, START_WAIT_MS, () => done);
    // Until every worker listens, the primary hands all connections to the ready ones, and the
    // load test's long-lived connections would stay there.
    const deadline = Date.now() + START_WAIT_MS;
    // One worker is no cluster: main.ts serves in the process itself and logs no "worker ready".
    while (options.workers > 1 && logs.workersReady() < options.workers) {
      if (done || Date.now() > deadline)
        throw new Error(`${logs.workersReady()} of ${options.workers} workers got ready`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    child.kill("SIGTERM");
    throw error;
  }
  return {
    target,
    workers: async () => byConnections(await clusterWorkerPids(child.pid!), port),
    async stop() {
      if (done) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WAIT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts the server against the given stores with the given admission settings. */
export function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  if (!(options.workers > 1 || options.childProcess)) return startThread(options);
  if (options.estimateTraceFile) throw new Error("an estimate trace needs the server in this process (one worker)");
  return startCluster(options);
}
