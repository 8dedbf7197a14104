// The server's own view of the waiting room while the run goes on: the sizes of the concert's
// waiting and active sets in Redis, polled a few times a second. Only read, never written; it
// draws "active vs cap" from the source of truth rather than from the clients' view, and keeps
// the largest active count it saw.

import type { RedisClient } from "../platform/redis/client.js";
import { createQueueKeys } from "../queue/queue-keys.js";

export interface ServerGauge {
  latest(): { waiting: number; active: number } | undefined;
  maxActive(): number;
  stop(): void;
}

export function startServerGauge(
  redis: RedisClient,
  redisKeyPrefix: string,
  concertId: string,
  intervalMs = 250,
): ServerGauge {
  const keys = createQueueKeys(redisKeyPrefix).concert(concertId);
  let latest: { waiting: number; active: number } | undefined;
  let maxActive = 0;
  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const [waiting, active] = await Promise.all([redis.zcard(keys.waiting), redis.zcard(keys.active)]);
      latest = { waiting, active };
      maxActive = Math.max(maxActive, active);
    } catch {
      // A missed sample only leaves a gap in the chart.
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void poll(), intervalMs);
  void poll();
  return {
    latest: () => latest,
    maxActive: () => maxActive,
    stop: () => clearInterval(timer),
  };
}
