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
  const calls = new Counter({
    name: "rpc_server_calls_total",
    help: "Completed RPCs by transport, method and status code",
    labelNames: ["transport", "method", "code"] as const,
    registers: [registry],
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
      calls.inc({ transport: label.transport, method: label.method, code });
      latency.observe(label, (performance.now() - startedMs) / 1000);
    },
  };
}
