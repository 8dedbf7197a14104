// Every environment variable the server reads, parsed and validated in one place.
// README.md documents each one; test/unit/compose.test.ts checks docker-compose.yml against
// CONFIG_VARIABLES.

import { availableParallelism } from "node:os";
import { parseAdminTokens, type AdminToken } from "./admin/admin-tokens.js";

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
  /** Events the Redis event stream keeps (approximately; 0 = unbounded). */
  eventStreamMaxLen: number;
  /** Browser origins allowed to call the Connect port cross-origin; "*" is any; empty sends no CORS headers. */
  corsOrigins: readonly string[];
  /** AdminService callers: names with the SHA-256 of their secrets (the secrets themselves are not kept). */
  adminTokens: readonly AdminToken[];
}

/** Time allowed after SHUTDOWN_GRACE_MS for the loops to stop and the stores to close; then the process exits 1. */
export const SHUTDOWN_CLEANUP_MS = 15_000;

interface Variable {
  name: string;
  defaultValue: string;
  description: string;
}

/** The documented environment, in README order. */
export const CONFIG_VARIABLES: readonly Variable[] = [
  {
    name: "DATABASE_URL",
    defaultValue: "postgres://root@127.0.0.1:5432/test",
    description: "PostgreSQL connection URL",
  },
  { name: "DATABASE_POOL_MAX", defaultValue: "16", description: "PostgreSQL connections per process" },
  {
    name: "REDIS_URL",
    defaultValue: "redis://127.0.0.1:6379",
    description: "Redis URL (a `/N` path selects the logical database)",
  },
  {
    name: "REDIS_CLUSTER_NODES",
    defaultValue: "",
    description:
      "Redis Cluster nodes as `host:port,host:port` (any reachable ones; the rest are discovered), with the user, password and TLS (rediss://) of REDIS_URL; empty uses the single node at REDIS_URL",
  },
  { name: "REDIS_KEY_PREFIX", defaultValue: "cb:", description: "prefix of every Redis key" },
  { name: "HOST", defaultValue: "0.0.0.0", description: "interface both ports bind to" },
  {
    name: "PORT",
    defaultValue: "50051",
    description: "gRPC port (grpc-js): the services, health and reflection; 0 picks a free port",
  },
  {
    name: "CONNECT_PORT",
    defaultValue: "8080",
    description: "Connect and gRPC-Web port (connect-node; HTTP/2 without TLS and HTTP/1.1) and GET /metrics",
  },
  {
    name: "CORS_ORIGINS",
    defaultValue: "",
    description:
      "browser origins allowed to call the Connect port from another origin, as `https://a.example,https://b.example` or `*` for any; empty sends no CORS headers (same origin only)",
  },
  {
    name: "MAX_ACTIVE_USERS",
    defaultValue: "1000",
    description: "users admitted from the waiting room at once, per concert",
  },
  { name: "ADMISSION_INTERVAL_MS", defaultValue: "1000", description: "admission tick" },
  { name: "ACTIVE_TOKEN_TTL", defaultValue: "600", description: "seconds an admitted user may book and pay" },
  {
    name: "WAITING_TOKEN_TTL",
    defaultValue: "60",
    description: "seconds a waiting user keeps their place without polling or watching",
  },
  { name: "SEAT_HOLD_SECONDS", defaultValue: "300", description: "how long a seat hold lasts before payment" },
  { name: "MAX_SEATS_PER_USER", defaultValue: "4", description: "live holds and purchases per user and schedule" },
  {
    name: "HOLD_SWEEP_INTERVAL_MS",
    defaultValue: "1000",
    description: "how often expired seat holds are swept back to available",
  },
  { name: "LOG_LEVEL", defaultValue: "info", description: "fatal, error, warn, info, debug, trace or silent" },
  { name: "SERVICES", defaultValue: "queue,booking,wallet,admin", description: "services this process serves" },
  { name: "WORKERS", defaultValue: "1", description: "server processes sharing the ports (`0` = one per core)" },
  { name: "SEED_DEMO_DATA", defaultValue: "true", description: "create demo concerts when the database has none" },
  { name: "MAX_REQUEST_BYTES", defaultValue: "65536", description: "largest request message accepted" },
  { name: "DEFAULT_DEADLINE_MS", defaultValue: "30000", description: "deadline for calls that set none" },
  {
    name: "MAX_WAITING_USERS",
    defaultValue: "1000000",
    description:
      "users one concert's line may hold waiting; new joins past it get RESOURCE_EXHAUSTED with a retry delay, users already in line keep their place (`0` = no limit)",
  },
  {
    name: "MAX_IN_FLIGHT_CALLS",
    defaultValue: "20000",
    description:
      "unary calls of one service a process answers at once (both ports); more get RESOURCE_EXHAUSTED with a retry delay (`0` = no limit)",
  },
  {
    name: "MAX_OPEN_STREAMS",
    defaultValue: "20000",
    description: "open WatchQueue streams per process and port; more get RESOURCE_EXHAUSTED",
  },
  {
    name: "CONNECT_REQUEST_TIMEOUT_MS",
    defaultValue: "10000",
    description:
      "a Connect-port request whose headers and body have not all arrived this long after it began is closed (HTTP/1.1 and HTTP/2)",
  },
  {
    name: "CONNECT_RESET_BURST",
    defaultValue: "1000",
    description:
      "HTTP/2 streams one Connect-port connection may reset before they were answered, in a burst; past it (and CONNECT_RESET_RATE) the connection gets GOAWAY ENHANCE_YOUR_CALM",
  },
  {
    name: "CONNECT_RESET_RATE",
    defaultValue: "100",
    description: "streams per second that refill CONNECT_RESET_BURST",
  },
  {
    name: "SHUTDOWN_GRACE_MS",
    defaultValue: "10000",
    description: `time in-flight calls get to finish on SIGTERM; then they are cancelled, and a process that PostgreSQL or Redis still holds up exits 1 at most ${SHUTDOWN_CLEANUP_MS / 1000} s later`,
  },
  {
    name: "EVENT_STREAM_MAX_LEN",
    defaultValue: "1000000",
    description:
      "events the Redis event stream keeps (trimmed approximately, oldest first; `0` = never trim); every event also stays in the PostgreSQL outbox",
  },
  {
    name: "ADMIN_TOKENS",
    defaultValue: "",
    description:
      "AdminService callers as `name:secret,name2:secret2` (secrets of 16+ characters, sent as `authorization: Bearer <secret>`); empty with no ADMIN_TOKENS_FILE refuses every admin call",
  },
  {
    name: "ADMIN_TOKENS_FILE",
    defaultValue: "",
    description: "a file holding the admin tokens instead, one `name:secret` per line (`#` comments allowed)",
  },
];

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function reader(env: Env) {
  const problems: string[] = [];
  const raw = (name: string): string => {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return value.trim();
    const known = CONFIG_VARIABLES.find((v) => v.name === name);
    if (!known) throw new Error(`undocumented variable ${name}`);
    return known.defaultValue;
  };
  const integer = (name: string, min: number, max: number): number => {
    const text = raw(name);
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      problems.push(`${name}=${text} must be an integer from ${min} to ${max}`);
      return min;
    }
    return value;
  };
  /** DATABASE_URL: a postgres URL that names its database (pg would quietly pick the user's name, MikroORM refuses none). */
  const databaseUrl = (): string => {
    const before = problems.length;
    const text = url("DATABASE_URL", ["postgres:", "postgresql:"]);
    if (problems.length > before) return text; // one complaint per variable
    const path = decodeURIComponent(new URL(text).pathname).replace(/^\//, "");
    if (path === "" || path.includes("/"))
      problems.push(`DATABASE_URL=${text} must name a database, as in postgres://user@host:5432/dbname`);
    return text;
  };
  const url = (name: string, protocols: string[]): string => {
    const text = raw(name);
    try {
      const parsed = new URL(text);
      if (!protocols.includes(parsed.protocol)) throw new Error("protocol");
    } catch {
      problems.push(`${name}=${text} must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL`);
    }
    return text;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T => {
    const text = raw(name).toLowerCase();
    if (!(allowed as readonly string[]).includes(text)) {
      problems.push(`${name}=${text} must be one of ${allowed.join(", ")}`);
      return allowed[0]!;
    }
    return text as T;
  };
  const bool = (name: string): boolean => oneOf(name, ["true", "false", "1", "0"]) in { true: 1, 1: 1 };
  const hostPorts = (name: string): { host: string; port: number }[] => {
    const text = raw(name);
    const nodes: { host: string; port: number }[] = [];
    for (const entry of text
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const match = /^\[?([^\s/[\]]+?)\]?:(\d{1,5})$/.exec(entry); // also [IPv6]:port
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        problems.push(`${name}=${text} must be a comma-separated list of host:port`);
        return [];
      }
      nodes.push({ host: match[1]!, port });
    }
    return nodes;
  };
  /** A comma-separated list of web origins (scheme://host[:port], as browsers send them), or "*". */
  const origins = (name: string): string[] => {
    const text = raw(name);
    const list = text
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length === 1 && list[0] === "*") return list;
    const bad = list.filter((entry) => {
      try {
        const url = new URL(entry);
        return !["http:", "https:"].includes(url.protocol) || url.origin !== entry;
      } catch {
        return true;
      }
    });
    if (bad.length > 0)
      problems.push(
        `${name}=${text} must be * or a comma-separated list of origins like https://app.example.com (no path, no trailing slash): ${bad.join(", ")}`,
      );
    return bad.length > 0 ? [] : list;
  };
  /** Throws one ConfigError naming every problem found so far. */
  const throwIfProblems = () => {
    if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  };
  return { raw, integer, url, databaseUrl, oneOf, bool, hostPorts, origins, problems, throwIfProblems };
}

/** Parses the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const r = reader(env);
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
  const r = reader(env);
  const databaseUrl = r.databaseUrl();
  r.throwIfProblems();
  return databaseUrl;
}
