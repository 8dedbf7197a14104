// Start-up failures as users meet them (`node --import tsx src/main.ts` with a wrong setting or a
// missing store): exactly one line on stderr, naming only the store or setting at fault with the
// advice that applies, nothing on stdout, a non-zero exit. The shared PostgreSQL and Redis are
// never stopped: "unreachable" is a closed port, "refused" a role or user that does not exist.

import test from "ava";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { testKeyPrefix } from "../helpers/redis-server.js";
import { limitConcurrency, SERVER_START_TIMEOUT_MS } from "../helpers/wait.js";
import { freePort } from "../../src/loadtest/free-port.js";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
/** Cases start at most two servers at once, so a busy machine does not starve them. */
const limited = limitConcurrency(2);
/** Nothing of these cases reaches Redis's keys (every failure comes first), but keep clear of others'. */
const PREFIX = testKeyPrefix("startup");
const UNKNOWN_HOST = "no-such-host.invalid";

let database: TestDatabase;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the server with this environment until it exits by itself (or the bound kills it). */
function startServer(env: Record<string, string>): Promise<Outcome> {
  return limited(async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        REDIS_URL: "redis://127.0.0.1:6379",
        REDIS_CLUSTER_NODES: "",
        REDIS_KEY_PREFIX: PREFIX,
        HOST: "127.0.0.1",
        PORT: "0",
        CONNECT_PORT: "0",
        LOG_LEVEL: "info",
        SEED_DEMO_DATA: "false",
        WORKERS: "1",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // Every case ends by itself within seconds on an idle machine; the bound only stops a hang.
    const killer = setTimeout(() => child.kill("SIGKILL"), SERVER_START_TIMEOUT_MS);
    const [code] = (await once(child, "close")) as [number | null];
    clearTimeout(killer);
    return { code, stdout, stderr };
  });
}

/** Exit status, one stderr line matching `line`, empty stdout; the line must not match `unrelated`. */
async function expectOneLine(
  t: import("ava").ExecutionContext,
  env: Record<string, string>,
  expected: { code: number; line: RegExp; unrelated: RegExp },
): Promise<void> {
  const outcome = await startServer(env);
  const report = `exit ${outcome.code}\nstdout:\n${outcome.stdout}\nstderr:\n${outcome.stderr}`;
  t.is(outcome.code, expected.code, report);
  t.is(outcome.stdout, "", report);
  const lines = outcome.stderr.split("\n");
  t.deepEqual(lines.slice(1), [""], `exactly one line, newline-terminated:\n${report}`);
  t.regex(lines[0]!, expected.line);
  t.notRegex(lines[0]!, expected.unrelated);
}

/** A hint about the other store, or the compose command for both, is wrong advice here. */
const NOT_REDIS = /REDIS|Redis|docker compose up -d postgres redis/;
const NOT_POSTGRES = /DATABASE_URL|PostgreSQL|postgres/;

test.before(async () => {
  database = await createTestDatabase("startup");
});

test.after.always(async () => {
  await database?.drop();
});

test("PostgreSQL unreachable: one line with DATABASE_URL and the compose hint for postgres", async (t) => {
  const port = await freePort();
  await expectOneLine(
    t,
    { DATABASE_URL: `postgres://root@127.0.0.1:${port}/test` },
    {
      code: 1,
      line: new RegExp(
        `^concert-booking: PostgreSQL is unreachable at postgres://root@127\\.0\\.0\\.1:${port}/test \\(connect ECONNREFUSED [^)]+\\): start it, point DATABASE_URL at it, or run \`docker compose up -d postgres\`$`,
      ),
      unrelated: NOT_REDIS,
    },
  );
});

test("PostgreSQL refuses a role that does not exist: says so, not 'unreachable' or 'start it'", async (t) => {
  const role = `cb_no_role_${randomBytes(4).toString("hex")}`;
  const url = new URL(database.url);
  url.username = role;
  await expectOneLine(
    t,
    { DATABASE_URL: url.toString() },
    {
      code: 1,
      line: new RegExp(
        `^concert-booking: PostgreSQL at postgres://${role}@127\\.0\\.0\\.1:5432/\\S+ refused the login of ${role} \\(role "${role}" does not exist\\): put a role that exists, with its password, in DATABASE_URL, or create it \\(createuser ${role}\\)$`,
      ),
      unrelated: /unreachable|start it|REDIS|Redis/,
    },
  );
});

test("a database that does not exist: says so, with createdb", async (t) => {
  const name = `cb_no_db_${randomBytes(4).toString("hex")}`;
  const url = new URL(database.url);
  url.pathname = `/${name}`;
  await expectOneLine(
    t,
    { DATABASE_URL: url.toString() },
    {
      code: 1,
      line: new RegExp(
        `^concert-booking: PostgreSQL at postgres://root@127\\.0\\.0\\.1:5432/${name} has no database "${name}": create it \\(createdb "${name}"\\) or point DATABASE_URL at one that exists$`,
      ),
      unrelated: /unreachable|start it|REDIS|Redis/,
    },
  );
});

test("a PostgreSQL host that does not resolve: names the host and DATABASE_URL", async (t) => {
  await expectOneLine(
    t,
    { DATABASE_URL: `postgres://root@${UNKNOWN_HOST}:5432/test` },
    {
      code: 1,
      line: /^concert-booking: PostgreSQL host "no-such-host\.invalid" does not resolve \(getaddrinfo \w+ no-such-host\.invalid\): correct the host in DATABASE_URL$/,
      unrelated: /unreachable|start it|REDIS|Redis/,
    },
  );
});

test("Redis unreachable: the real cause (not 'Connection is closed.'), REDIS_URL and the compose hint for redis", async (t) => {
  const port = await freePort();
  await expectOneLine(
    t,
    { REDIS_URL: `redis://127.0.0.1:${port}` },
    {
      code: 1,
      line: new RegExp(
        `^concert-booking: Redis is unreachable at redis://127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED [^)]+\\): start it, point REDIS_URL at it, or run \`docker compose up -d redis\`$`,
      ),
      unrelated: NOT_POSTGRES,
    },
  );
});

test("a Redis database index the server does not have: says so, not 'start it'", async (t) => {
  await expectOneLine(
    t,
    { REDIS_URL: "redis://127.0.0.1:6379/99" },
    {
      code: 1,
      line: /^concert-booking: Redis at redis:\/\/127\.0\.0\.1:6379\/99 has no database 99 \(ERR DB index is out of range\): choose one it has as \/N in REDIS_URL \(0-15 unless its `databases` setting allows more\)$/,
      unrelated: /unreachable|start it|DATABASE_URL|PostgreSQL/,
    },
  );
});

test("a Redis host that does not resolve: names the host and REDIS_URL", async (t) => {
  await expectOneLine(
    t,
    { REDIS_URL: `redis://${UNKNOWN_HOST}:6379` },
    {
      code: 1,
      line: /^concert-booking: Redis host "no-such-host\.invalid" does not resolve \(getaddrinfo \w+ no-such-host\.invalid\): correct the host in REDIS_URL$/,
      unrelated: /unreachable|start it|DATABASE_URL|PostgreSQL/,
    },
  );
});

test("Redis refusing the login (a user it does not have): says so, password redacted", async (t) => {
  const user = `cb-no-user-${randomBytes(4).toString("hex")}`;
  await expectOneLine(
    t,
    { REDIS_URL: `redis://${user}:secret@127.0.0.1:6379` },
    {
      code: 1,
      line: new RegExp(
        `^concert-booking: Redis at redis://${user}:\\*\\*\\*@127\\.0\\.0\\.1:6379 refused the login \\(WRONGPASS [^)]+\\): put the right user and password in REDIS_URL$`,
      ),
      unrelated: /secret|unreachable|start it|DATABASE_URL|PostgreSQL/,
    },
  );
});

/** A port this test really holds while the server starts. */
async function withTakenPort(use: (port: number) => Promise<void>): Promise<void> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  try {
    await use((holder.address() as net.AddressInfo).port);
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
}

for (const [variable, other] of [
  ["PORT", "CONNECT_PORT"],
  ["CONNECT_PORT", "PORT"],
] as const) {
  test(`${variable} taken: one line naming ${variable} only, no log line, no grpc-js warning`, async (t) => {
    await withTakenPort((port) =>
      expectOneLine(
        t,
        { [variable]: String(port) },
        {
          code: 1,
          line: new RegExp(
            `^concert-booking: ${variable}=${port} on 127\\.0\\.0\\.1 is in use \\(another server running\\?\\): stop the other process or choose another ${variable}$`,
          ),
          unrelated: new RegExp(`(^|[^_])${other}\\b|REDIS|DATABASE_URL`),
        },
      ),
    );
  });
}

test("a HOST that is not an address of this machine: one line naming HOST", async (t) => {
  await expectOneLine(
    t,
    { HOST: "192.0.2.1", PORT: String(await freePort()) },
    {
      code: 1,
      line: /^concert-booking: HOST=192\.0\.2\.1 is not an address of this machine: choose one of its addresses, or 0\.0\.0\.0 for all$/,
      unrelated: /REDIS|DATABASE_URL/,
    },
  );
});

test("a HOST that does not resolve: one line naming HOST", async (t) => {
  await expectOneLine(
    t,
    { HOST: UNKNOWN_HOST, PORT: String(await freePort()) },
    {
      code: 1,
      line: /^concert-booking: HOST=no-such-host\.invalid does not resolve \([^)]+\): choose an address of this machine, or 0\.0\.0\.0 for all$/,
      unrelated: /REDIS|DATABASE_URL/,
    },
  );
});

test("an invalid setting: one line naming it, exit 2", async (t) => {
  await expectOneLine(
    t,
    { PORT: "eighty" },
    {
      code: 2,
      line: /^concert-booking: invalid configuration: PORT=eighty must be an integer from 0 to 65535$/,
      unrelated: /REDIS|DATABASE_URL|CONNECT_PORT/,
    },
  );
});

test("WORKERS=2: a store failure is said once, by the first worker, and the primary adds nothing", async (t) => {
  const port = await freePort();
  await expectOneLine(
    t,
    { WORKERS: "2", REDIS_URL: `redis://127.0.0.1:${port}` },
    { code: 1, line: /^concert-booking: Redis is unreachable at /, unrelated: NOT_POSTGRES },
  );
});

test("WORKERS=2: a taken port is said once, before any worker starts", async (t) => {
  await withTakenPort((port) =>
    expectOneLine(
      t,
      { WORKERS: "2", PORT: String(port) },
      { code: 1, line: new RegExp(`^concert-booking: PORT=${port} on 127\\.0\\.0\\.1 is in use`), unrelated: /REDIS/ },
    ),
  );
});
