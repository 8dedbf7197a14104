// WORKERS=2: two server processes share both ports; a killed worker is replaced; SIGTERM drains all.

import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { createGrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { freePort } from "../../src/loadtest/free-port.js";
import { removeTestKeys, testKeyPrefix } from "../helpers/redis-server.js";
import { SERVER_START_TIMEOUT_MS, waitFor } from "../helpers/wait.js";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
/** The cluster's Redis keys (default Redis), removed at the end. */
const PREFIX = testKeyPrefix("cluster");
let database: TestDatabase;

test.before(async () => {
  database = await createTestDatabase("cluster");
});

test.after.always(async () => {
  await database?.drop();
  await removeTestKeys(PREFIX);
});

/** Worker processes of the primary (tsx also runs an esbuild child, which is not one). */
function childPids(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid), "-f", "main.ts"], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Waits for workers to start: each compiles with tsx and connects to the stores, slowly on a busy machine. */
const until = (condition: () => boolean, what: string, output: () => string) =>
  waitFor(condition, {
    timeoutMs: SERVER_START_TIMEOUT_MS,
    intervalMs: 100,
    message: () => `${what}; output:\n${output()}`,
  });

test("two workers serve one port, a dead worker is replaced, SIGTERM drains every worker", async (t) => {
  const [port, connectPort] = [await freePort(), await freePort()];
  const primary = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: database.url,
      PORT: String(port),
      CONNECT_PORT: String(connectPort),
      HOST: "127.0.0.1",
      REDIS_KEY_PREFIX: PREFIX,
      WORKERS: "2",
      SEED_DEMO_DATA: "false",
      LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  primary.stdout.on("data", (d: Buffer) => (output += d.toString()));
  primary.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = once(primary, "exit");
  t.teardown(() => {
    if (primary.exitCode === null) primary.kill("SIGKILL");
  });
  const readyCount = () => output.split("\n").filter((l) => l.includes('"msg":"worker ready"')).length;

  await until(
    () => readyCount() >= 2,
    "two workers",
    () => output,
  );
  const workers = childPids(primary.pid!);
  t.is(workers.length, 2);

  const client = createGrpcClient(WalletService, `127.0.0.1:${port}`);
  for (let i = 0; i < 20; i++)
    await client.topUp({ userId: "cluster-user", amount: { amountMinor: 1n }, idempotencyKey: `c${i}` });

  process.kill(workers[0]!, "SIGKILL");
  await until(
    () => output.includes("worker died; starting a replacement") && readyCount() >= 3,
    "a replacement worker",
    () => output,
  );
  t.is(childPids(primary.pid!).length, 2);
  const { wallet } = await client.getBalance({ userId: "cluster-user" }, { deadlineMs: 30_000 });
  t.is(wallet?.balance?.amountMinor, 20n);
  client.close();

  primary.kill("SIGTERM");
  const [code] = await exited;
  t.is(code, 0);
  t.is(output.split("\n").filter((l) => l.includes('"msg":"stopped"')).length, 2, "both live workers drained");
  t.regex(output, /all workers stopped/);
});
