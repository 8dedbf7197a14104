// Health follows PostgreSQL: NOT_SERVING while it is unreachable, SERVING again once it is back.

import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startApp, type App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/platform/logger.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { startTcpProxy, type TcpProxy } from "../../src/loadtest/tcp-proxy.js";
import { removeTestKeys, testKeyPrefix } from "../helpers/redis-server.js";

const run = promisify(execFile);
const PREFIX = testKeyPrefix("health");
let database: TestDatabase;
let proxy: TcpProxy;
let app: App;

test.before(async () => {
  database = await createTestDatabase("health");
  proxy = await startTcpProxy(5432);
  const url = new URL(database.url);
  url.port = String(proxy.port);
  const config = {
    ...loadConfig({}),
    databaseUrl: url.toString(),
    redisKeyPrefix: PREFIX,
    host: "127.0.0.1",
    port: 0,
    connectPort: 0,
    seedDemoData: false,
    logLevel: "silent" as const,
  };
  app = await startApp(config, createLogger("silent"));
});

test.after.always(async () => {
  await app?.stop();
  await proxy?.close();
  await database?.drop();
  await removeTestKeys(PREFIX);
});

async function status(service: string): Promise<string> {
  const { stdout } = await run("buf", [
    "curl",
    "--protocol",
    "grpc",
    "--http2-prior-knowledge",
    "-d",
    JSON.stringify({ service }),
    `http://127.0.0.1:${app.grpcPort}/grpc.health.v1.Health/Check`,
  ]);
  return (JSON.parse(stdout) as { status: string }).status;
}

async function eventually(service: string, expected: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = "";
  while (Date.now() < deadline) {
    last = await status(service);
    if (last === expected) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`health of "${service}" stayed ${last}, expected ${expected}`);
}

test("health turns NOT_SERVING while PostgreSQL is unreachable and SERVING when it returns", async (t) => {
  t.is(await status(""), "SERVING");
  proxy.cut();
  await eventually("", "NOT_SERVING");
  t.is(await status("concert.v1.WalletService"), "NOT_SERVING");
  proxy.restore();
  await eventually("", "SERVING");
  t.is(await status("concert.v1.BookingService"), "SERVING");
});
