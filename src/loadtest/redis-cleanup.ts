// Removes the Redis keys of a run that had its own key prefix (--start-server --fresh-database
// without --keep-database): SCAN, never KEYS, and UNLINK in batches.

import { connectRedis, createRedis } from "../platform/redis/client.js";

export async function removeRedisKeys(redisUrl: string, prefix: string): Promise<number> {
  const redis = createRedis({ url: redisUrl, name: "loadtest-cleanup", commandTimeoutMs: 10_000 });
  await connectRedis(redis, redisUrl);
  let removed = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`, "COUNT", 1000);
      if (keys.length > 0) removed += await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
    return removed;
  } finally {
    redis.disconnect();
  }
}
