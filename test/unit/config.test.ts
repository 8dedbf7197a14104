import test from "ava";
import { readFileSync } from "node:fs";
import { CONFIG_VARIABLES, ConfigError, loadConfig, loadDatabaseUrl } from "../../src/config.js";

test("defaults match design.md §4", (t) => {
  const config = loadConfig({});
  t.is(config.databaseUrl, "postgres://root@127.0.0.1:5432/test");
  t.is(config.redisUrl, "redis://127.0.0.1:6379");
  t.is(config.port, 50051);
  t.is(config.connectPort, 8080);
  t.is(config.admissionIntervalMs, 1000);
  t.is(config.seatHoldSeconds, 300);
  t.deepEqual(config.services, ["queue", "booking", "wallet", "admin"]);
});

test("every bad value is reported in one error", (t) => {
  const error = t.throws(
    () => loadConfig({ PORT: "x", REDIS_URL: "http://nope", SERVICES: "queue,shop", LOG_LEVEL: "loud" }),
    { instanceOf: ConfigError },
  );
  for (const name of ["PORT", "REDIS_URL", "SERVICES", "LOG_LEVEL"]) t.regex(error!.message, new RegExp(`${name}=`));
});

test("SERVICES selects a subset; WORKERS=0 means one per core", (t) => {
  const config = loadConfig({ SERVICES: "wallet, queue", WORKERS: "0" });
  t.deepEqual([...config.services].sort(), ["queue", "wallet"]);
  t.true(config.workers >= 1);
});

test("REDIS_CLUSTER_NODES lists host:port pairs; empty means the single node at REDIS_URL", (t) => {
  t.deepEqual(loadConfig({}).redisClusterNodes, []);
  t.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: " redis-a:7000, 10.0.0.2:7001 ,[::1]:7002" }).redisClusterNodes, [
    { host: "redis-a", port: 7000 },
    { host: "10.0.0.2", port: 7001 },
    { host: "::1", port: 7002 },
  ]);
  for (const bad of ["redis-a", "redis-a:0", "redis-a:7000,:7001", "redis://a:7000"]) {
    t.throws(
      () => loadConfig({ REDIS_CLUSTER_NODES: bad }),
      { instanceOf: ConfigError, message: /REDIS_CLUSTER_NODES=/ },
      bad,
    );
  }
});

test("REDIS_URL's path is a database number or nothing; PORT and CONNECT_PORT differ", (t) => {
  t.is(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379/3" }).redisUrl, "redis://127.0.0.1:6379/3");
  t.is(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379/" }).redisUrl, "redis://127.0.0.1:6379/");
  t.throws(() => loadConfig({ REDIS_URL: "redis://127.0.0.1:6379/x" }), {
    instanceOf: ConfigError,
    message: /REDIS_URL=.*database number/,
  });
  t.throws(() => loadConfig({ PORT: "5000", CONNECT_PORT: "5000" }), {
    instanceOf: ConfigError,
    message: /PORT and CONNECT_PORT must differ/,
  });
  t.is(loadConfig({ PORT: "0", CONNECT_PORT: "0" }).port, 0, "0 (a free port each) is fine twice");
});

test("migrate and seed read DATABASE_URL as the server does", (t) => {
  t.is(loadDatabaseUrl({ DATABASE_URL: "" }), loadConfig({}).databaseUrl);
  for (const unnamed of ["postgres://root@127.0.0.1:5432", "postgres://root@127.0.0.1:5432/"]) {
    t.throws(() => loadDatabaseUrl({ DATABASE_URL: unnamed }), {
      instanceOf: ConfigError,
      message: /must name a database/,
    });
    t.throws(() => loadConfig({ DATABASE_URL: unnamed }), { instanceOf: ConfigError, message: /must name a database/ });
  }
  t.is(
    loadConfig({ DATABASE_URL: "postgres://root@%2Fvar%2Frun%2Fpostgresql/test" }).databaseUrl,
    "postgres://root@%2Fvar%2Frun%2Fpostgresql/test",
    "a Unix socket",
  );
  t.throws(() => loadDatabaseUrl({ DATABASE_URL: "notaurl" }), {
    instanceOf: ConfigError,
    message: /DATABASE_URL=notaurl/,
  });
});

test("a malformed URL is one complaint per variable, with the schemes as written in a URL", (t) => {
  const error = t.throws(() => loadConfig({ DATABASE_URL: "mysql://x/db", REDIS_URL: "foo" }), {
    instanceOf: ConfigError,
  });
  t.is(
    error.message,
    "invalid configuration: DATABASE_URL=mysql://x/db must be a postgres:// or postgresql:// URL; REDIS_URL=foo must be a redis:// or rediss:// URL",
  );
});

test("README documents every variable with its default", (t) => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  for (const variable of CONFIG_VARIABLES) {
    const shown = variable.defaultValue === "" ? "" : `\`${variable.defaultValue}\``; // an empty default is an empty cell
    t.true(readme.includes(`| \`${variable.name}\` | ${shown} |`), `${variable.name} missing from README's table`);
  }
});

test("CORS_ORIGINS is empty (no CORS), * or a list of exact origins", (t) => {
  t.deepEqual(loadConfig({}).corsOrigins, []);
  t.deepEqual(loadConfig({ CORS_ORIGINS: "*" }).corsOrigins, ["*"]);
  t.deepEqual(loadConfig({ CORS_ORIGINS: "https://app.example, http://localhost:5173" }).corsOrigins, [
    "https://app.example",
    "http://localhost:5173",
  ]);
  for (const bad of [
    "app.example",
    "https://app.example/",
    "https://app.example/path",
    "ftp://app.example",
    "https://a.example,*",
  ]) {
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), { instanceOf: ConfigError, message: /CORS_ORIGINS=/ }, bad);
  }
});
