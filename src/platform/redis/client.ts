// Redis connections that fail fast. ioredis's defaults queue commands while disconnected and
// retry for ~30 s; the waiting room must instead notice an outage within a few hundred
// milliseconds and fall back to PostgreSQL, while reconnecting in the background. The server
// talks to one node (REDIS_URL) or to a Redis Cluster (REDIS_CLUSTER_NODES) through the same
// commands: every multi-key script and pipeline stays within one hash slot (queue-keys.ts).

import { Cluster, Redis } from "ioredis";

/** A single node or a cluster; the code that uses it only sends commands. */
export type RedisClient = Redis | Cluster;

export interface RedisNode {
  host: string;
  port: number;
}

export interface RedisOptions {
  url: string;
  /** Connection name shown by CLIENT LIST. */
  name: string;
  commandTimeoutMs?: number;
}

const reconnectDelayMs = (attempt: number) => Math.min(50 * attempt, 1000);

/** Per-connection options shared by a single node and every node of a cluster. */
function connectionOptions(options: RedisOptions) {
  return {
    connectionName: options.name,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    // Measured from our side, so it includes our own event-loop lag: a busy process (thousands
    // of streams opening at once) saw 500 ms expire on a healthy Redis. A dead Redis fails at
    // once anyway (closed connection, no offline queue); this only bounds a hung one.
    commandTimeout: options.commandTimeoutMs ?? 2000,
  };
}

export function createRedis(options: RedisOptions): Redis {
  const redis = new Redis(options.url, {
    ...connectionOptions(options),
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: reconnectDelayMs,
    enableAutoPipelining: true,
  });
  // Outages surface as failed commands, which callers handle; without a listener ioredis would
  // also print every reconnect failure to stderr.
  redis.on("error", () => {});
  return redis;
}

/**
 * A cluster client with the same behaviour: no offline queue while the cluster is unreachable,
 * reconnects in the background. Auto-pipelining groups commands per node, so commands on keys of
 * different slots may be issued together; an explicit pipeline must stay on one slot.
 */
export function createRedisCluster(nodes: readonly RedisNode[], options: RedisOptions): Cluster {
  const cluster = new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: reconnectDelayMs,
      // A command that meets a closed or still-connecting node connection, or CLUSTERDOWN during a
      // failover, is retried every 100 ms with a fresh slot map, at most 10 times and never past
      // commandTimeout: brief reconnects stay invisible, a lost node fails the call within ~1 s.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      maxRedirections: 10,
      slotsRefreshTimeout: 1000,
      slotsRefreshInterval: 5000,
      redisOptions: { ...connectionOptions(options), ...credentials(options.url) },
    },
  );
  cluster.on("error", () => {});
  return cluster;
}

/** User, password and TLS of a redis:// or rediss:// URL, for the nodes of a cluster. */
function credentials(url: string): { username?: string; password?: string; tls?: object } {
  try {
    const parsed = new URL(url);
    return {
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
    };
  } catch {
    return {};
  }
}

/** A cluster client when `clusterNodes` lists any node, else a client of the node at `url`. */
export function createRedisClient(options: RedisOptions & { clusterNodes?: readonly RedisNode[] }): RedisClient {
  const { clusterNodes = [], ...rest } = options;
  return clusterNodes.length > 0 ? createRedisCluster(clusterNodes, rest) : createRedis(rest);
}

/** Where a client connects, for messages: the URL (password redacted) or the cluster nodes. */
export function describeRedis(url: string, clusterNodes: readonly RedisNode[] = []): string {
  return clusterNodes.length > 0
    ? `cluster nodes ${clusterNodes.map((n) => `${n.host}:${n.port}`).join(",")}`
    : redactUrl(url);
}

/** getaddrinfo failures: the host name itself is wrong, retrying or starting a server will not help. */
export const UNRESOLVED_HOST = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME"]);

/**
 * Connects, or throws a one-line error naming the target (a URL is redacted), the setting to
 * change (REDIS_URL, or REDIS_CLUSTER_NODES for a cluster) and only the advice that applies.
 */
export async function connectRedis(redis: RedisClient, target: string): Promise<void> {
  const variable = redis instanceof Redis ? "REDIS_URL" : "REDIS_CLUSTER_NODES";
  // ioredis rejects with "Connection is closed." and reports the reason (refused, no such host,
  // wrong password) only as an event: keep the last one for the message.
  let reason: (Error & { code?: string; lastNodeError?: Error }) | undefined;
  const onError = (error: Error) => (reason = error);
  redis.on("error", onError);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    const cause = reason?.lastNodeError ?? reason ?? (error as Error & { code?: string });
    // eslint-disable-next-line preserve-caught-error -- ioredis's socket error, when it saw one, names the real problem
    throw new Error(explainConnectFailure(cause, redactUrl(target), variable), { cause });
  } finally {
    redis.off("error", onError);
  }
  // ioredis selects the URL's /N database on connect but only reports a refusal as an event, and
  // goes on in database 0, among whatever keys live there: ask again, and stop if refused.
  const db = redis instanceof Redis ? redis.options.db : undefined;
  if (db) {
    try {
      await redis.select(db);
    } catch (error) {
      redis.disconnect();
      throw new Error(
        `Redis at ${redactUrl(target)} has no database ${db} (${(error as Error).message}): choose one it has as /N in REDIS_URL (0-15 unless its \`databases\` setting allows more)`,
        { cause: error },
      );
    }
  }
}

function explainConnectFailure(error: Error & { code?: string; hostname?: string }, target: string, variable: string) {
  const cause = error.message.split("\n")[0]!;
  if (error.code && UNRESOLVED_HOST.has(error.code)) {
    return `Redis host "${error.hostname ?? "?"}" does not resolve (${cause}): correct the host in ${variable}`;
  }
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(cause)) {
    // A cluster's nodes take the user and password of REDIS_URL too (see createRedisCluster).
    return `Redis at ${target} refused the login (${cause}): put the right user and password in REDIS_URL`;
  }
  return variable === "REDIS_URL"
    ? `Redis is unreachable at ${target} (${cause}): start it, point REDIS_URL at it, or run \`docker compose up -d redis\``
    : `Redis is unreachable at ${target} (${cause}): start it or list reachable nodes in REDIS_CLUSTER_NODES`;
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}
