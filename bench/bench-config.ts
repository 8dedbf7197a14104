// The configuration every in-process benchmark server starts from: its own database, its own
// Redis key prefix, free ports, no demo data, quiet logs.

import { randomBytes } from "node:crypto";
import { loadConfig, type Config } from "../src/config.js";

export function benchConfig(databaseUrl: string, keyLabel: string, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({}),
    databaseUrl,
    host: "127.0.0.1",
    port: 0,
    connectPort: 0,
    redisKeyPrefix: `${keyLabel}:${randomBytes(4).toString("hex")}:`,
    seedDemoData: false,
    logLevel: "warn",
    shutdownGraceMs: 2000,
    ...overrides,
  };
}
