// docker-compose.yml and the Dockerfile are for users (no Docker engine runs here), so check them
// by reading: the stores stay on loopback and are checked over TCP, the app waits for them,
// restarts, has its own gRPC health check and enough time to stop, runs as a non-root user on the
// image's Node 24, and its environment is exactly what src/config.ts reads.

import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { CONFIG_VARIABLES, loadConfig } from "../../src/config.js";

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
  healthcheck?: { test?: string[]; timeout?: string; start_period?: string };
  stop_grace_period?: string;
}

const root = new URL("../../", import.meta.url);
const compose = parse(readFileSync(new URL("docker-compose.yml", root), "utf8")) as {
  services: Record<string, ComposeService>;
};
const { postgres, redis, app } = compose.services as Record<"postgres" | "redis" | "app", ComposeService>;
const appEnv = app.environment ?? {};

/** Dockerfile instructions as [keyword, arguments], continuation lines joined, comments dropped. */
const dockerfile = readFileSync(new URL("Dockerfile", root), "utf8")
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"))
  .map((line) => {
    const [keyword, ...rest] = line.split(/\s+/);
    return [keyword!.toUpperCase(), rest.join(" ")] as const;
  });
const instructions = (keyword: string) => dockerfile.filter(([k]) => k === keyword).map(([, args]) => args);

/** A compose duration ("30s", "1m30s", "500ms") in milliseconds. */
function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  let total = 0;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) total += Number(value) * units[unit!]!;
  return total;
}

test("compose defines postgres 15, redis 7 and the app", (t) => {
  t.deepEqual(Object.keys(compose.services).sort(), ["app", "postgres", "redis"]);
  t.regex(postgres.image!, /^postgres:15/);
  t.regex(redis.image!, /^redis:7/);
  t.truthy(app.build);
});

test("redis runs with appendonly yes", (t) => {
  const command = redis.command ?? [];
  t.is(command[command.indexOf("--appendonly") + 1], "yes");
});

test("the stores are published on 127.0.0.1 only (PostgreSQL trusts every login)", (t) => {
  for (const [name, store] of Object.entries({ postgres, redis })) {
    // host:port:container, the host port a number or ${VARIABLE:-default}
    for (const port of store.ports ?? [])
      t.regex(port, /^127\.0\.0\.1:(\d+|\$\{\w+:-\d+\}):\d+$/, `${name} publishes ${port}`);
  }
});

test("the stores' healthchecks test over TCP, as the app connects", (t) => {
  t.deepEqual(postgres.healthcheck?.test?.slice(0, 4), ["CMD", "pg_isready", "-h", "127.0.0.1"]);
  const redisCheck = redis.healthcheck?.test ?? [];
  t.is(redisCheck[0], "CMD-SHELL");
  // PONG itself: a Redis still loading its AOF answers PING with an error.
  t.is(redisCheck[1], "redis-cli -h 127.0.0.1 ping | grep -q PONG");
});

test("the app waits for healthy stores and restarts on failure", (t) => {
  t.deepEqual(app.depends_on, {
    postgres: { condition: "service_healthy" },
    redis: { condition: "service_healthy" },
  });
  t.true(["unless-stopped", "on-failure", "always"].includes(app.restart ?? ""), `restart: ${app.restart}`);
});

test("the app's healthcheck asks gRPC health with the image's node and the script exists", (t) => {
  const check = app.healthcheck?.test ?? [];
  t.deepEqual(check, ["CMD", "node", "--import", "tsx", "src/tools/healthcheck.ts"]);
  t.true(existsSync(new URL(check.at(-1)!, root)));
  // The script waits 3 s for an answer: compose must wait longer, or a slow answer reads as a hang.
  t.true(durationMs(app.healthcheck?.timeout ?? "30s") > 3000);
  t.true(durationMs(app.healthcheck?.start_period ?? "0s") >= 30_000, "time for migrations and the demo seed");
});

test("stop_grace_period outlasts the app's worst case (SHUTDOWN_GRACE_MS + the clean-up limit)", (t) => {
  const config = loadConfig(appEnv);
  const worstCaseMs = config.shutdownGraceMs + config.shutdownCleanupMs;
  const graceMs = durationMs(app.stop_grace_period ?? "10s"); // Docker's default is 10 s
  t.true(graceMs > worstCaseMs, `stop_grace_period ${app.stop_grace_period} vs ${worstCaseMs} ms`);
});

test("the app environment sets every documented variable and nothing else", (t) => {
  t.deepEqual(Object.keys(appEnv).sort(), CONFIG_VARIABLES.map((v) => v.name).sort());
});

test("the app environment is a valid configuration pointing at the compose services", (t) => {
  const config = loadConfig(appEnv);
  t.is(new URL(config.databaseUrl).hostname, "postgres");
  t.is(new URL(config.redisUrl).hostname, "redis");
  const containerPorts = (app.ports ?? []).map((p) => Number(p.split(":").at(-1)));
  t.deepEqual(containerPorts.sort(), [config.connectPort, config.port].sort());
});

test("the Dockerfile runs the server on the image's Node 24, as a non-root user, without npm in front", (t) => {
  const from = instructions("FROM");
  t.is(from.length, 1);
  t.regex(from[0]!, /^node:24(\.|-|$)/);
  const user = instructions("USER").at(-1);
  t.truthy(user, "a USER instruction");
  t.false(["root", "0", "0:0"].includes(user!), `USER ${user}`);
  const cmd = JSON.parse(instructions("CMD").at(-1) ?? "null") as string[] | null;
  // Exec form: node itself is PID 1's child (or PID 1), so SIGTERM and the exit status are the server's.
  t.deepEqual(cmd, ["node", "--import", "tsx", "src/main.ts"]);
  // What the server and the health check read at run time is in the image.
  const copied = instructions("COPY").flatMap((args) => args.split(/\s+/).slice(0, -1));
  for (const needed of ["package.json", "package-lock.json", "src", "gen"]) t.true(copied.includes(needed), needed);
  t.regex(instructions("RUN").join("\n"), /npm ci --omit=dev/);
});

test(".dockerignore keeps the host's node_modules out of the build context", (t) => {
  const ignored = readFileSync(new URL(".dockerignore", root), "utf8").split("\n");
  t.true(ignored.includes("node_modules"));
  for (const needed of ["src", "gen", "package.json", "package-lock.json"]) t.false(ignored.includes(needed), needed);
});
