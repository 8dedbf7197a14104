// WORKERS > 1: a primary process forks that many server processes sharing PORT and CONNECT_PORT
// (node:cluster hands incoming connections to the workers). Each worker has its own PostgreSQL
// pool and Redis connections; admission, sweepers and the outbox relay are safe to run in all of
// them at once. A worker that dies unexpectedly is replaced; SIGTERM/SIGINT drain every worker.
// The first worker starts alone (it applies the migrations the others would wait for anyway): a
// start-up failure (a store unreachable, say) is then said once, by it, and ends the primary quietly.

import cluster, { type Worker } from "node:cluster";
import type { Logger } from "./platform/logger.js";

export const WORKER_READY = "concert-booking:worker-ready";

/** Restarts closer together than this count as a crash loop and stop the cluster. */
const CRASH_WINDOW_MS = 10_000;
const MAX_CRASHES_IN_WINDOW = 5;

export function runPrimary(workers: number, logger: Logger): void {
  let stopping = false;
  const crashes: number[] = [];
  /** Whether any worker ever got ready: after that, a replacement failing to start is a crash like any other. */
  let started = false;
  const fork = () => {
    const worker = cluster.fork();
    worker.on("message", (message: unknown) => {
      if (message !== WORKER_READY) return;
      logger.info({ worker: worker.process.pid }, "worker ready");
      if (started) return;
      started = true;
      if (!stopping) for (let i = 1; i < workers; i++) fork();
    });
  };
  cluster.on("exit", (worker: Worker, code, signal) => {
    if (stopping) {
      // The primary's status tells whether every worker drained cleanly.
      if (code !== 0 || signal !== null) {
        logger.warn({ worker: worker.process.pid, code, signal }, "worker did not stop cleanly");
        process.exitCode ||= 1;
      }
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info("all workers stopped");
        process.exit();
      }
      return;
    }
    if (!started) {
      // The first worker failed to start and has said why (unreachable store, taken port):
      // replacing it would only repeat the message, and a log line here would add noise to it.
      process.exit(code || 1);
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && now - crashes[0]! > CRASH_WINDOW_MS) crashes.shift();
    if (crashes.length > MAX_CRASHES_IN_WINDOW) {
      logger.fatal({ crashes: crashes.length, windowMs: CRASH_WINDOW_MS }, "workers keep dying; stopping the cluster");
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
      process.exitCode = 1;
      return;
    }
    logger.warn({ worker: worker.process.pid, code, signal }, "worker died; starting a replacement");
    fork();
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, "draining workers");
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM");
  };
  // Not once: a second signal (a process-group SIGTERM, Ctrl-C after SIGTERM) must not kill the
  // primary mid-drain, which would end every worker at once.
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  fork();
}
