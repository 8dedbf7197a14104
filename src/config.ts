// Every environment variable the server reads, parsed and validated in one place: the table of
// variables is config-variables.ts (README.md documents each one), the reading helpers config-reader.ts.

import { availableParallelism } from "node:os";
import { parseAdminTokens, type AdminToken } from "./admin/admin-tokens.js";
import { createEnvReader, type Env } from "./config-reader.js";

export { ConfigError } from "./config-reader.js";
export { CONFIG_VARIABLES, type ConfigVariable } from "./config-variables.js";

export type ServiceName = "queue" | "booking" | "wallet" | "admin";
export const ALL_SERVICES: readonly ServiceName[] = ["queue", "booking", "wallet", "admin"];

export interface Config {
  databaseUrl: string;
  /** PostgreSQL pool size per process. */
  databasePoolMax: number;
  redisUrl: string;
  /** Redis Cluster startup nodes; empty means the single node at redisUrl. */
  redisClusterNodes: readonly { host: string; port: number }[];
  /** Prefix of every Redis key this process writes; tests use one per file. */
  redisKeyPrefix: string;
  port: number;
  connectPort: number;
  host: string;
  maxActiveUsers: number;
  /** Users one concert's line may hold waiting; past it new joins get OVERLOADED (0 = no limit). */
  maxWaitingUsers: number;
  admissionIntervalMs: number;
  activeTokenTtlSeconds: number;
  waitingTokenTtlSeconds: number;
  /** How long an admitted user is expected to keep a slot: the wait estimate's prior (0 = none). */
  expectedSessionSeconds: number;
  seatHoldSeconds: number;
  maxSeatsPerUser: number;
  /** How often the sweeper frees seats of expired holds. */
  holdSweepIntervalMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  services: readonly ServiceName[];
  workers: number;
  /** Seed demo data when the database holds no concert. */
  seedDemoData: boolean;
  /** Largest request message accepted, in bytes. */
  maxRequestBytes: number;
  /** Deadline applied to calls that arrive without one, in milliseconds. */
  defaultDeadlineMs: number;
  /** Open server streams allowed per process and transport (WatchQueue). */
  maxOpenStreams: number;
  /** Unary calls of one service a process answers at once, both ports together (0 = no limit). */
  maxInFlightCalls: number;
  /** A Connect-port request whose headers and body have not all arrived by then is closed. */
  connectRequestTimeoutMs: number;
  /** HTTP/2 streams a peer may reset before they were answered: burst, and refill per second. */
  connectResetBurst: number;
  connectResetRate: number;
  /** How long graceful shutdown waits for in-flight calls before cancelling them. */
  shutdownGraceMs: number;
  /** Then how long stopping the loops and closing the stores may take before the process exits 1. */
  shutdownCleanupMs: number;
  /** Events the Redis event stream keeps (approximately; 0 = unbounded). */
  eventStreamMaxLen: number;
  /** Browser origins allowed to call the Connect port cross-origin; "*" is any; empty sends no CORS headers. */
  corsOrigins: readonly string[];
  /** AdminService callers: names with the SHA-256 of their secrets (the secrets themselves are not kept). */
  adminTokens: readonly AdminToken[];
}

/** Parses the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const r = createEnvReader(env);
  const services = r
    .raw("SERVICES")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const unknown = services.filter((s) => !(ALL_SERVICES as readonly string[]).includes(s));
  if (unknown.length > 0 || services.length === 0) {
    r.problems.push(`SERVICES=${r.raw("SERVICES")} must list some of ${ALL_SERVICES.join(",")}`);
  }
  const workers = r.integer("WORKERS", 0, 64);
  const config: Config = {
    databaseUrl: r.databaseUrl(),
    databasePoolMax: r.integer("DATABASE_POOL_MAX", 1, 500),
    redisUrl: r.url("REDIS_URL", ["redis:", "rediss:"]),
    redisClusterNodes: r.hostPorts("REDIS_CLUSTER_NODES"),
    redisKeyPrefix: r.raw("REDIS_KEY_PREFIX"),
    host: r.raw("HOST"),
    port: r.integer("PORT", 0, 65535),
    connectPort: r.integer("CONNECT_PORT", 0, 65535),
    maxActiveUsers: r.integer("MAX_ACTIVE_USERS", 1, 10_000_000),
    admissionIntervalMs: r.integer("ADMISSION_INTERVAL_MS", 10, 3_600_000),
    activeTokenTtlSeconds: r.integer("ACTIVE_TOKEN_TTL", 1, 86_400),
    waitingTokenTtlSeconds: r.integer("WAITING_TOKEN_TTL", 1, 86_400),
    expectedSessionSeconds: r.integer("EXPECTED_SESSION_SECONDS", 0, 86_400),
    seatHoldSeconds: r.integer("SEAT_HOLD_SECONDS", 1, 86_400),
    maxSeatsPerUser: r.integer("MAX_SEATS_PER_USER", 1, 100),
    holdSweepIntervalMs: r.integer("HOLD_SWEEP_INTERVAL_MS", 10, 3_600_000),
    logLevel: r.oneOf("LOG_LEVEL", ["info", "fatal", "error", "warn", "debug", "trace", "silent"] as const),
    services: [...new Set(services)] as ServiceName[],
    workers: workers === 0 ? availableParallelism() : workers,
    seedDemoData: r.bool("SEED_DEMO_DATA"),
    maxRequestBytes: r.integer("MAX_REQUEST_BYTES", 1024, 64 * 1024 * 1024),
    defaultDeadlineMs: r.integer("DEFAULT_DEADLINE_MS", 100, 3_600_000),
    maxOpenStreams: r.integer("MAX_OPEN_STREAMS", 1, 1_000_000),
    maxWaitingUsers: r.integer("MAX_WAITING_USERS", 0, 1_000_000_000),
    maxInFlightCalls: r.integer("MAX_IN_FLIGHT_CALLS", 0, 10_000_000),
    connectRequestTimeoutMs: r.integer("CONNECT_REQUEST_TIMEOUT_MS", 100, 3_600_000),
    connectResetBurst: r.integer("CONNECT_RESET_BURST", 1, 1_000_000),
    connectResetRate: r.integer("CONNECT_RESET_RATE", 1, 1_000_000),
    shutdownGraceMs: r.integer("SHUTDOWN_GRACE_MS", 0, 600_000),
    shutdownCleanupMs: r.integer("SHUTDOWN_CLEANUP_MS", 100, 600_000),
    eventStreamMaxLen: r.integer("EVENT_STREAM_MAX_LEN", 0, 1_000_000_000),
    corsOrigins: r.origins("CORS_ORIGINS"),
    adminTokens: parseAdminTokens(r.raw("ADMIN_TOKENS"), r.raw("ADMIN_TOKENS_FILE"), r.problems),
  };
  // A Redis URL's path selects the logical database: /N, nothing else (Redis refuses indexes it
  // does not have at connect time, see connectRedis).
  if (!/^\/?(\d{1,5})?$/.test(redisPath(config.redisUrl)))
    r.problems.push(`REDIS_URL=${config.redisUrl} must end in /N, a database number, or no path`);
  if (config.port !== 0 && config.port === config.connectPort)
    r.problems.push(`PORT and CONNECT_PORT must differ (both ${config.port})`);
  r.throwIfProblems();
  return config;
}

function redisPath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return ""; // reported by the URL check
  }
}

/**
 * DATABASE_URL alone, validated as loadConfig does, for the tools that need nothing else
 * (migrate, seed): an empty value means the default, a malformed one is a ConfigError.
 */
export function loadDatabaseUrl(env: Env = process.env): string {
  const r = createEnvReader(env);
  const databaseUrl = r.databaseUrl();
  r.throwIfProblems();
  return databaseUrl;
}
