// The waiting room's Prometheus counters and gauges: what this process sent to PostgreSQL, its
// join batches, and the lines as its admission ticks left them.

import { Counter, Gauge, type Registry } from "prom-client";
import type { AdmissionTick } from "./admission-loop.js";

export interface QueueMetrics {
  /** One SQL statement sent (queue_pg_statements_total). */
  statementSent(): void;
  /** SQL statements sent so far; the benchmark reads it. */
  readonly statements: number;
  /** One group-commit flush of JoinQueue. */
  joinBatchFlushed(): void;
  /** Records one admission tick of a concert, with the cap its settings gave the tick. */
  tick(tick: AdmissionTick, cap: number): void;
  /** After a step: the concerts it went through; the others have nobody left in line. */
  stepDone(concertIds: ReadonlySet<string>): void;
  /** Reads the open WatchQueue streams of this process at each scrape. */
  watchStreams(count: () => number): void;
}

export function createQueueMetrics(registry: Registry): QueueMetrics {
  const statements = new Counter({
    name: "queue_pg_statements_total",
    help: "SQL statements the waiting room sent to PostgreSQL",
    registers: [registry],
  });
  const batches = new Counter({
    name: "queue_join_batches_total",
    help: "Group-commit flushes of JoinQueue",
    registers: [registry],
  });
  const admittedTotal = new Counter({
    name: "queue_admitted_total",
    help: "Users admitted by this process's admission loop",
    registers: [registry],
  });
  const endedTotal = new Counter({
    name: "queue_tokens_ended_total",
    help: "Tokens this process's admission loop ended: expired (ACTIVE past ACTIVE_TOKEN_TTL) or abandoned (WAITING, not polled or watched for WAITING_TOKEN_TTL)",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const waitingUsers = new Gauge({
    name: "queue_waiting_users",
    help: "Users waiting per concert, as of this process's last admission tick",
    labelNames: ["concert_id"] as const,
    registers: [registry],
  });
  const activeUsers = new Gauge({
    name: "queue_active_users",
    help: "Users admitted and not yet expired per concert, as of this process's last admission tick",
    labelNames: ["concert_id"] as const,
    registers: [registry],
  });
  let gaugedConcerts = new Set<string>();
  // Per concert: AdminService may give a concert a cap other than MAX_ACTIVE_USERS.
  const activeCap = new Gauge({
    name: "queue_active_cap",
    help: "The most users active at once per concert (its queue settings, else MAX_ACTIVE_USERS)",
    labelNames: ["concert_id"] as const,
    registers: [registry],
  });
  let statementCount = 0;

  return {
    statementSent() {
      statementCount++;
      statements.inc();
    },
    get statements() {
      return statementCount;
    },
    joinBatchFlushed: () => batches.inc(),
    tick(tick, cap) {
      admittedTotal.inc(tick.admitted);
      endedTotal.inc({ reason: "expired" }, tick.expired);
      endedTotal.inc({ reason: "abandoned" }, tick.abandoned);
      waitingUsers.set({ concert_id: tick.concertId }, tick.waiting);
      activeUsers.set({ concert_id: tick.concertId }, tick.active);
      activeCap.set({ concert_id: tick.concertId }, cap);
      gaugedConcerts.add(tick.concertId);
    },
    stepDone(concertIds) {
      for (const concertId of gaugedConcerts) {
        if (concertIds.has(concertId)) continue;
        waitingUsers.remove({ concert_id: concertId });
        activeUsers.remove({ concert_id: concertId });
        activeCap.remove({ concert_id: concertId });
      }
      gaugedConcerts = new Set(concertIds);
    },
    watchStreams(count) {
      new Gauge({
        name: "queue_watch_streams",
        help: "Open WatchQueue streams of this process",
        registers: [registry],
        collect() {
          this.set(count());
        },
      });
    },
  };
}
