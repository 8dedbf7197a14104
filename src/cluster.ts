// WORKERS > 1: a primary process forks that many server processes sharing PORT and CONNECT_PORT
// (node:cluster hands incoming connections to the workers). Each worker has its own PostgreSQL
// pool and Redis connections; admission, sweepers and the outbox relay are safe to run in all of
// them at once. A worker that dies unexpectedly is replaced; SIGTERM/SIGINT drain every worker.

import cluster, { type Worker } from "node:cluster";
import type { Logger } from "./platform/logger.js";

/** Restarts closer together than this count as a crash loop and stop the cluster. */
export const WORKER_READY = "concert-booking:worker-ready";

const CRASH_WINDOW_MS = 10_000;
const MAX_CRASHES_IN_WINDOW = 5;

export function runPrimary(workers: number, logger: Logger): void {
  let stopping = false;
  const crashes: number[] = [];
  const ready = new WeakSet<Worker>();
  /** Whether any worker ever got ready: after that, a replacement failing to start is a crash like any other. */
  let started = false;
  const fork = () => {
    const worker = cluster.fork();
    worker.on("message", (message: unknown) => {
      if (message !== WORKER_READY) return;
      ready.add(worker);
      started = true;
      logger.info({ worker: worker.process.pid }, "worker ready");
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
    if (!started && !ready.has(worker) && code !== null && code !== 0) {
      // The first workers failing to start have already explained why (unreachable store, bad
      // config); replacing them would only repeat the message.
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
      process.exitCode = code;
      return;
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
  logger.info({ workers }, "starting workers");
  for (let i = 0; i < workers; i++) fork();
}
