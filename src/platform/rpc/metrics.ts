// Prometheus metrics (prom-client: the de-facto Node client, exposition format that every
// scraper understands). One registry per process; served at GET /metrics on the Connect port.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface CallLabel {
  transport: string;
  method: string;
}

export interface RpcMetrics {
  registry: Registry;
  streamsOpen: Gauge<"transport" | "method">;
  observe(label: CallLabel, code: string, startedMs: number): void;
}

export function createMetrics(options: { defaultMetrics: boolean } = { defaultMetrics: true }): RpcMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  // Completed calls are counted in plain maps and added to the counter when it is collected (at
  // each scrape): Counter.inc allocates, hashes and validates a label object on every call, a
  // visible share of the adapter's own per-call time.
  const pending = new Map<string, { transport: string; method: string; codes: Map<string, number> }>();
  new Counter({
    name: "rpc_server_calls_total",
    help: "Completed RPCs by transport, method and status code",
    labelNames: ["transport", "method", "code"] as const,
    registers: [registry],
    collect() {
      for (const { transport, method, codes } of pending.values()) {
        for (const [code, count] of codes) this.inc({ transport, method, code }, count);
        codes.clear();
      }
    },
  });
  const latency = new Histogram({
    name: "rpc_server_duration_seconds",
    help: "RPC handling time",
    labelNames: ["transport", "method"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const streamsOpen = new Gauge({
    name: "rpc_server_open_streams",
    help: "Server streams currently open",
    labelNames: ["transport", "method"] as const,
    registers: [registry],
  });
  return {
    registry,
    streamsOpen,
    observe(label, code, startedMs) {
      const key = `${label.transport} ${label.method}`;
      let counts = pending.get(key);
      if (!counts) pending.set(key, (counts = { transport: label.transport, method: label.method, codes: new Map() }));
      counts.codes.set(code, (counts.codes.get(code) ?? 0) + 1);
      latency.observe(label, (performance.now() - startedMs) / 1000);
    },
  };
}
