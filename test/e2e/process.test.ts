// The real entry point as users run it (`npm start` = node --import tsx src/main.ts): SIGTERM
// drains in-flight calls and exits 0. Start-up failures are in startup-failures.test.ts.

import * as grpc from "@grpc/grpc-js";
import test from "ava";
import http from "node:http";
import net from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import pg from "pg";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { createGrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { createTestDatabase, waitForLockWaiters, type TestDatabase } from "../helpers/database.js";
import { freePort } from "../../src/loadtest/free-port.js";
import { removeTestKeys, testKeyPrefix } from "../helpers/redis-server.js";
import { limitConcurrency, SERVER_START_TIMEOUT_MS, waitFor } from "../helpers/wait.js";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
/** Every server of this file writes under this prefix (the default Redis), removed at the end. */
const PREFIX = testKeyPrefix("process");

/** Every server started here, so that none outlives a test that failed before stopping it. */
const children = new Set<ChildProcess>();

function startServer(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: {
      ...process.env,
      LOG_LEVEL: "info",
      SEED_DEMO_DATA: "false",
      HOST: "127.0.0.1",
      REDIS_KEY_PREFIX: PREFIX,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  children.add(child);
  const exited = once(child, "exit").then(([code]) => {
    children.delete(child);
    return code as number | null;
  });
  return { child, output: () => output, exited };
}

let database: TestDatabase;

/** Waiting for a log line the server writes once signalled: milliseconds when idle, this bound when busy. */
const logLine = (server: { output: () => string }) => ({ timeoutMs: 30_000, intervalMs: 50, message: server.output });

/** Servers that may be starting at once: the tests run in parallel, and each start compiles with tsx. */
const startSlot = limitConcurrency(2);

/** A server on free ports with this shutdown grace period (and clean-up limit, else the default), once it listens. */
const startListening = (graceMs: number, cleanupMs?: number) => startSlot(() => startListeningNow(graceMs, cleanupMs));

async function startListeningNow(graceMs: number, cleanupMs?: number) {
  const [port, connectPort] = [await freePort(), await freePort()];
  const server = startServer({
    DATABASE_URL: database.url,
    PORT: String(port),
    CONNECT_PORT: String(connectPort),
    SHUTDOWN_GRACE_MS: String(graceMs),
    ...(cleanupMs === undefined ? {} : { SHUTDOWN_CLEANUP_MS: String(cleanupMs) }),
  });
  await waitFor(() => server.output().includes('"msg":"listening"'), {
    timeoutMs: SERVER_START_TIMEOUT_MS,
    intervalMs: 50,
    message: server.output,
  });
  return { server, port, connectPort };
}

/** A transaction holding a user's wallet row, so the next top-up of that user waits for it (commit or roll back to let go). */
async function lockWallet(userId: string): Promise<pg.Client & { pid: number }> {
  const blocker = new pg.Client({ connectionString: database.url });
  await blocker.connect();
  await blocker.query("begin");
  const { rows } = await blocker.query<{ pid: number }>(
    "select pg_backend_pid() as pid from wallet where user_id = $1 for update",
    [userId],
  );
  return Object.assign(blocker, { pid: rows[0]!.pid });
}

test.before(async () => {
  database = await createTestDatabase("process");
});

test.after.always(async () => {
  for (const child of children) child.kill("SIGKILL");
  await database?.drop();
  await removeTestKeys(PREFIX);
});

test("SIGTERM lets an in-flight call finish (also through more signals), refuses new ones and exits 0", async (t) => {
  const { server, port } = await startListening(60_000);
  const client = createGrpcClient(WalletService, `127.0.0.1:${port}`);
  await client.topUp({ userId: "grace", amount: { amountMinor: 1n }, idempotencyKey: "g0" });

  // Hold the wallet row so the next top-up is still running when SIGTERM arrives.
  const blocker = await lockWallet("grace");
  const inFlight = client.topUp({ userId: "grace", amount: { amountMinor: 10n }, idempotencyKey: "g1" });
  await waitForLockWaiters(database.url, blocker.pid, 1);
  server.child.kill("SIGTERM");
  await waitFor(() => server.output().includes('"msg":"shutting down"'), logLine(server));
  // More signals (a process-group SIGTERM, Ctrl-C) do not cut the drain short.
  server.child.kill("SIGTERM");
  server.child.kill("SIGINT");
  await waitFor(() => (server.output().match(/"msg":"already shutting down"/g) ?? []).length === 2, logLine(server));
  await blocker.query("commit");
  await blocker.end();

  const response = await inFlight;
  t.is(response.wallet?.balance?.amountMinor, 11n, "the in-flight top-up completed");
  t.is(await server.exited, 0);
  t.regex(server.output(), /"msg":"stopped"/);
  await t.throwsAsync(client.getBalance({ userId: "grace" }, { deadlineMs: 2000 }));
  client.close();
});

test("a shutdown that PostgreSQL stalls past the grace period ends anyway, exit 1, SHUTDOWN_CLEANUP_MS later", async (t) => {
  t.timeout(180_000);
  const [graceMs, cleanupMs] = [500, 3000];
  const { server, port } = await startListening(graceMs, cleanupMs);
  const client = createGrpcClient(WalletService, `127.0.0.1:${port}`);
  await client.topUp({ userId: "stalled", amount: { amountMinor: 1n }, idempotencyKey: "s0" });
  // A lock holder that never lets go: the in-flight top-up keeps its pool connection.
  const blocker = await lockWallet("stalled");
  try {
    const inFlight = client
      .topUp({ userId: "stalled", amount: { amountMinor: 10n }, idempotencyKey: "s1" })
      .catch(() => "failed");
    await waitForLockWaiters(database.url, blocker.pid, 1);
    const signalled = Date.now();
    server.child.kill("SIGTERM");
    t.is(await server.exited, 1, server.output());
    // Not before the limit; the upper bound is the default limit (15 s), which an ignored
    // SHUTDOWN_CLEANUP_MS would wait out, far beyond a busy machine's late timer.
    const took = Date.now() - signalled;
    t.true(took >= graceMs + cleanupMs && took < 15_000, `exited after ${took} ms`);
    t.regex(server.output(), /"msg":"shutdown did not finish in time; exiting"/);
    t.is(await inFlight, "failed");
  } finally {
    await blocker.query("rollback").catch(() => undefined);
    await blocker.end();
    client.close();
  }
});

test("an HTTP/1.1 call in flight at SIGTERM is answered with Connection: close, and neither its keep-alive connection nor an idle one holds the shutdown", async (t) => {
  const { server, connectPort } = await startListening(60_000);
  const agent = new http.Agent({ keepAlive: true });
  // A second client whose connection sits idle through the shutdown.
  const idleAgent = new http.Agent({ keepAlive: true });
  const call = (key: string, via = agent) =>
    new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const request = http.request(
        {
          host: "127.0.0.1",
          port: connectPort,
          path: "/concert.v1.WalletService/TopUp",
          method: "POST",
          agent: via,
          headers: { "content-type": "application/json" },
        },
        (response) => {
          response.resume();
          response.on("end", () => resolve({ status: response.statusCode!, connection: response.headers.connection }));
        },
      );
      request.on("error", reject);
      request.end(JSON.stringify({ userId: "keepalive", amount: { amountMinor: "1" }, idempotencyKey: key }));
    });
  t.is((await call("k0")).connection, "keep-alive");
  t.is((await call("idle", idleAgent)).connection, "keep-alive");
  const blocker = await lockWallet("keepalive");
  try {
    const inFlight = call("k1");
    await waitForLockWaiters(database.url, blocker.pid, 1);
    server.child.kill("SIGTERM");
    await waitFor(() => server.output().includes('"msg":"shutting down"'), logLine(server));
    await blocker.query("commit");
    const answered = await inFlight;
    const at = Date.now();
    t.deepEqual(answered, { status: 200, connection: "close" });
    t.is(await server.exited, 0);
    // Far below the 60 s grace period, which a connection holding the shutdown would use up.
    t.true(Date.now() - at < 20_000, `exited ${Date.now() - at} ms after the answer`);
  } finally {
    await blocker.query("rollback").catch(() => undefined);
    await blocker.end();
    agent.destroy();
    idleAgent.destroy();
  }
});

test("SIGTERM ends a Health.Watch stream with UNAVAILABLE and does not wait out the grace period for it or for a silent connection", async (t) => {
  const { server, port, connectPort } = await startListening(60_000);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const same = (b: Buffer) => b;
  const watch = client.makeServerStreamRequest("/grpc.health.v1.Health/Watch", same, same, Buffer.alloc(0));
  let updates = 0;
  watch.on("data", () => updates++);
  watch.on("error", () => {}); // the status below is what counts
  const ended = new Promise<number>((resolve) =>
    watch.on("status", (status: grpc.StatusObject) => resolve(status.code)),
  );
  const silent = net.connect(connectPort, "127.0.0.1");
  silent.on("error", () => {});
  await waitFor(() => updates > 0, logLine(server));

  const started = Date.now();
  server.child.kill("SIGTERM");
  t.is(await ended, grpc.status.UNAVAILABLE);
  t.is(await server.exited, 0);
  const took = Date.now() - started;
  // Far below the 60 s grace period, which the stream or the silent connection would use up.
  t.true(took < 20_000, `exited after ${took} ms`);
  silent.destroy();
  client.close();
});
