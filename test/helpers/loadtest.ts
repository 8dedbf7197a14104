// The CI-sized load test against a test app: every user at once, one random seat each, no seat
// retries, generous deadlines, and the app's own stores for the audit.

import { runLoadTest, type LoadTestOptions, type LoadTestReport } from "../../src/loadtest/run-load-test.js";
import type { TestApp } from "./app.js";

export function runCiLoadTest(
  app: TestApp,
  options: { users: number; cap: number; connections: number } & Partial<LoadTestOptions>,
): Promise<LoadTestReport> {
  const { users, cap, ...rest } = options;
  return runLoadTest({
    target: app.grpcAddress,
    users,
    concurrency: users,
    seatPick: "random-once",
    seatRetries: 0,
    rpcTimeoutMs: 20_000,
    // A whole run's bound: tens of seconds when the machine is busy, far more than when idle.
    timeoutMs: 240_000,
    maxActiveUsers: cap,
    databaseUrl: app.config.databaseUrl,
    redisUrl: app.config.redisUrl,
    redisKeyPrefix: app.config.redisKeyPrefix,
    ...rest,
  });
}
