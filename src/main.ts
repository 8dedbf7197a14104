// Process entry: config → app → listen → graceful shutdown on SIGTERM/SIGINT.

import * as grpc from "@grpc/grpc-js";
import cluster from "node:cluster";
import { format } from "node:util";
import { startApp, StartupError } from "./app.js";
import { runPrimary, WORKER_READY } from "./cluster.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./platform/logger.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`concert-booking: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, cluster.isWorker ? { worker: cluster.worker?.id } : {});
  // grpc-js writes its own errors (a failed bind, say) to stderr as plain text: into the JSON log instead.
  grpc.setLogger({
    error: (...args: unknown[]) => logger.warn({ component: "grpc-js" }, format(...args)),
    info: (...args: unknown[]) => logger.info({ component: "grpc-js" }, format(...args)),
    debug: (...args: unknown[]) => logger.debug({ component: "grpc-js" }, format(...args)),
  });
  if (config.workers > 1 && cluster.isPrimary) {
    runPrimary(config.workers, logger);
    return;
  }
  let app;
  try {
    app = await startApp(config, logger);
  } catch (error) {
    if (error instanceof StartupError) {
      process.stderr.write(`concert-booking: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "shutting down");
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  process.send?.(WORKER_READY);
}

await main();
