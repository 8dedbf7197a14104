// The Redis side of the waiting room on the shared Redis, for tests of its scripts: a client and a
// queue under the test file's own key prefix, connected before the file's tests and removed with
// every key of the prefix after them. Call it at the top of a test file.

import test from "ava";
import { loadConfig } from "../../src/config.js";
import { createRedis } from "../../src/platform/redis/client.js";
import { createRedisQueue } from "../../src/queue/redis-queue.js";
import { removeTestKeys, testKeyPrefix } from "./redis-server.js";

export function redisQueueFixture(label: string) {
  const prefix = testKeyPrefix(label);
  // A patient timeout: these tests wait on Redis from a machine that may be busy.
  const redis = createRedis({ url: loadConfig({}).redisUrl, name: `${label}-test`, commandTimeoutMs: 10_000 });
  const queue = createRedisQueue(redis, prefix);
  test.before(() => redis.connect());
  test.after.always(async () => {
    redis.disconnect();
    await removeTestKeys(prefix);
  });
  return { prefix, redis, queue };
}
