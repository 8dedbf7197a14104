// Redis connections that fail fast. ioredis's defaults queue commands while disconnected and
// retry for ~30 s; the waiting room must instead notice an outage within a few hundred
// milliseconds and fall back to PostgreSQL, while reconnecting in the background.

import { Redis } from "ioredis";

export interface RedisOptions {
  url: string;
  /** Connection name shown by CLIENT LIST. */
  name: string;
  commandTimeoutMs?: number;
}

export function createRedis(options: RedisOptions): Redis {
  const redis = new Redis(options.url, {
    connectionName: options.name,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    // Measured from our side, so it includes our own event-loop lag: a busy process (thousands
    // of streams opening at once) saw 500 ms expire on a healthy Redis. A dead Redis fails at
    // once anyway (closed connection, no offline queue); this only bounds a hung one.
    commandTimeout: options.commandTimeoutMs ?? 2000,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    enableAutoPipelining: true,
  });
  // Outages surface as failed commands, which callers handle; without a listener ioredis would
  // also print every reconnect failure to stderr.
  redis.on("error", () => {});
  return redis;
}

/** Connects, or throws a one-line error naming the URL. */
export async function connectRedis(redis: Redis, url: string): Promise<void> {
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`Redis is unreachable at ${redactUrl(url)} (${(error as Error).message})`, { cause: error });
  }
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
