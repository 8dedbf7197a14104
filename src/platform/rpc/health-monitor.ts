// Keeps grpc.health.v1 truthful: every served service (and the overall "" entry) is SERVING
// only while PostgreSQL answers. Redis is not part of it: the waiting room falls back to
// PostgreSQL when Redis is down, so the process can still serve.

import type { HealthImplementation } from "grpc-health-check";
import type { Logger } from "../logger.js";

/** A failed ping that ended this much later than its timeout says the process was stalled. */
const STALL_MARGIN_MS = 250;
/** Stalled pings tried again at once, at most; a process stalled that long is not serving anyway. */
const MAX_STALLED_RETRIES = 3;

export interface HealthMonitor {
  /** Marks everything NOT_SERVING for good (shutdown). */
  stop(): void;
}

export function startHealthMonitor(options: {
  health: HealthImplementation;
  serviceNames: readonly string[];
  ping: () => Promise<void>;
  intervalMs: number;
  /** The ping's own timeout (default: the interval). */
  pingTimeoutMs?: number;
  logger: Logger;
}): HealthMonitor {
  const { health, serviceNames, logger } = options;
  const timeoutMs = options.pingTimeoutMs ?? options.intervalMs;
  let serving: boolean | undefined;
  const set = (up: boolean, why = up ? "PostgreSQL reachable" : "PostgreSQL unreachable") => {
    if (serving === up) return;
    serving = up;
    const status = up ? "SERVING" : "NOT_SERVING";
    for (const name of ["", ...serviceNames]) health.setStatus(name, status);
    logger[up || stopped ? "info" : "warn"]({ status }, `health: ${why}`);
  };
  let stopped = false;
  // One probe at a time: a ping can take as long as the interval (its timeout), and a slow
  // failure landing after a newer success would flip health back to NOT_SERVING.
  let probing = false;
  const probe = async () => {
    if (probing) return;
    probing = true;
    try {
      // A ping that failed well after its timeout was due timed out because this process was
      // stalled (a burst of new streams, a starved CPU), not because PostgreSQL was silent: it
      // proves nothing, so it is tried again before health changes.
      for (let attempt = 0; ; attempt++) {
        const startedAt = performance.now();
        try {
          await options.ping();
          if (!stopped) set(true);
          return;
        } catch {
          const stalled = performance.now() - startedAt > timeoutMs + STALL_MARGIN_MS;
          if (stalled && attempt < MAX_STALLED_RETRIES && !stopped) continue;
          if (!stopped) set(false);
          return;
        }
      }
    } finally {
      probing = false;
    }
  };
  set(true);
  const timer = setInterval(() => void probe(), options.intervalMs);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      set(false, "shutting down");
    },
  };
}
