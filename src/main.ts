// Process entry: config → app → listen → graceful shutdown on SIGTERM/SIGINT.

import * as grpc from "@grpc/grpc-js";
import cluster from "node:cluster";
import { format } from "node:util";
import { startApp, StartupError } from "./app.js";
import { runPrimary, WORKER_READY } from "./cluster.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./platform/logger.js";
import { checkPortsFree } from "./platform/rpc/listen-failure.js";

/** A start-up failure the user can fix: its one line on stderr, nothing on stdout, no stack. */
function exitWith(message: string, code: number): never {
  process.stderr.write(`concert-booking: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWith(error.message, 2);
    throw error;
  }
  // Before the stores: a taken port is then reported at once, without migrating or logging first.
  // Cluster workers skip it: their primary checked, and the ports are shared among them.
  if (cluster.isPrimary) {
    const ports = [
      { variable: "PORT", port: config.port },
      { variable: "CONNECT_PORT", port: config.connectPort },
    ];
    await checkPortsFree(ports, config.host).catch((error: Error) => exitWith(error.message, 1));
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
    if (error instanceof StartupError) exitWith(error.message, 1);
    throw error;
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    // Later signals do not cut the drain short: a process-group SIGTERM (systemd's default)
    // reaches a cluster worker both directly and forwarded by the primary, and Ctrl-C sends
    // SIGINT to the whole group. Each is logged; the drain goes on.
    if (stopping) {
      logger.info({ signal }, "already shutting down");
      return;
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    // The drain is bounded by SHUTDOWN_GRACE_MS; what follows (stopping the loops, closing the
    // stores) waits on PostgreSQL and Redis, which a partition or a lock holder can stall
    // forever: past this deadline the process exits anyway, non-zero.
    const deadlineMs = config.shutdownGraceMs + config.shutdownCleanupMs;
    setTimeout(() => {
      logger.error({ deadlineMs }, "shutdown did not finish in time; exiting");
      process.exit(1);
    }, deadlineMs).unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.send?.(WORKER_READY);
}

await main();
