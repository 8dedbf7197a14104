// docker-compose.yml is for users (no Docker engine runs here), so check it by parsing: the
// services exist, Redis keeps an AOF, and the app's environment is exactly what src/config.ts reads.

import test from "ava";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { CONFIG_VARIABLES, loadConfig } from "../../src/config.js";

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, unknown>;
}

const compose = parse(readFileSync(new URL("../../docker-compose.yml", import.meta.url), "utf8")) as {
  services: Record<string, ComposeService>;
};

test("compose defines postgres 15, redis 7 and the app", (t) => {
  t.deepEqual(Object.keys(compose.services).sort(), ["app", "postgres", "redis"]);
  t.regex(compose.services.postgres!.image!, /^postgres:15/);
  t.regex(compose.services.redis!.image!, /^redis:7/);
  t.truthy(compose.services.app!.build);
  t.deepEqual(Object.keys(compose.services.app!.depends_on ?? {}).sort(), ["postgres", "redis"]);
});

test("redis runs with appendonly yes", (t) => {
  const command = compose.services.redis!.command ?? [];
  t.is(command[command.indexOf("--appendonly") + 1], "yes");
});

test("the app environment sets every documented variable and nothing else", (t) => {
  const env = compose.services.app!.environment ?? {};
  t.deepEqual(Object.keys(env).sort(), CONFIG_VARIABLES.map((v) => v.name).sort());
});

test("the app environment is a valid configuration pointing at the compose services", (t) => {
  const env = compose.services.app!.environment ?? {};
  const config = loadConfig(env);
  t.is(new URL(config.databaseUrl).hostname, "postgres");
  t.is(new URL(config.redisUrl).hostname, "redis");
  const published = (compose.services.app!.ports ?? []).map((p) => Number(p.split(":")[1]));
  t.deepEqual(published.sort(), [config.connectPort, config.port].sort());
});
