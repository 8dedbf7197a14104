// Removes the Redis keys of a run that had its own key prefix (--start-server --fresh-database
// without --keep-database): SCAN, never KEYS, and UNLINK in batches. On a Redis Cluster every
// master is scanned, and keys are unlinked one per command (a multi-key UNLINK must stay in one
// hash slot), pipelined.

import { Cluster, type Redis } from "ioredis";
import { connectRedis, createRedisClient, describeRedis, type RedisNode } from "../platform/redis/client.js";

async function removeFromNode(node: Redis, pattern: string, oneKeyPerCommand: boolean): Promise<number> {
  let removed = 0;
  let cursor = "0";
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0 && !oneKeyPerCommand) removed += await node.unlink(...keys);
    if (keys.length > 0 && oneKeyPerCommand) {
      const results = (await keys.reduce((pipeline, key) => pipeline.unlink(key), node.pipeline()).exec()) ?? [];
      for (const [error, count] of results) {
        if (error) throw error;
        removed += Number(count);
      }
    }
    cursor = next;
  } while (cursor !== "0");
  return removed;
}

export async function removeRedisKeys(
  redisUrl: string,
  prefix: string,
  clusterNodes: readonly RedisNode[] = [],
): Promise<number> {
  const redis = createRedisClient({ url: redisUrl, clusterNodes, name: "loadtest-cleanup", commandTimeoutMs: 10_000 });
  await connectRedis(redis, describeRedis(redisUrl, clusterNodes));
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  try {
    if (!(redis instanceof Cluster)) return await removeFromNode(redis, pattern, false);
    let removed = 0;
    for (const node of redis.nodes("master")) removed += await removeFromNode(node, pattern, true);
    return removed;
  } finally {
    redis.disconnect();
  }
}
