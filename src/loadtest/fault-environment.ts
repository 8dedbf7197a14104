// What `--fault` needs around the server the load test starts: a private redis-server for
// redis-outage, a cuttable TCP proxy in front of PostgreSQL for postgres-outage, the cluster's
// worker pids for worker-kill. Only things this process started are ever stopped: the shared
// Redis and PostgreSQL are never touched.

import type { Fault, FaultSpec } from "./faults.js";
import type { LocalServer } from "./local-server.js";
import { startPrivateRedis, type PrivateRedis } from "./private-redis.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

export interface FaultEnvironment {
  /** The PostgreSQL URL the server must use (through the proxy for postgres-outage). */
  serverDatabaseUrl: string;
  /** The Redis the server, the gauge and the audit use (the private one for redis-outage). */
  redisUrl: string;
  /** True when redisUrl is a private server, whose keys need no cleanup. */
  privateRedis: boolean;
  /** The faults, bound to the started server. */
  faults(server: LocalServer): Fault[];
  close(): Promise<void>;
}

function proxiedUrl(databaseUrl: string, proxyPort: number): string {
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(proxyPort);
  return url.toString();
}

function redisOutage(spec: FaultSpec, redis: PrivateRedis): Fault {
  return {
    spec,
    async inject() {
      const pid = redis.pid();
      await redis.kill();
      return `redis-server (pid ${pid}) killed with SIGKILL`;
    },
    async recover() {
      await redis.start();
      return `redis-server restarted (pid ${redis.pid()}) from its append-only file`;
    },
  };
}

function postgresOutage(spec: FaultSpec, proxy: TcpProxy): Fault {
  return {
    spec,
    async inject() {
      const dropped = proxy.cut();
      return `PostgreSQL proxy cut: ${dropped} connections dropped, new ones refused`;
    },
    async recover() {
      proxy.restore();
      return "PostgreSQL proxy accepting connections again";
    },
  };
}

function workerKill(spec: FaultSpec, server: LocalServer): Fault {
  return {
    spec,
    async inject() {
      const workers = (await server.workers?.()) ?? [];
      if (workers.length < 2)
        throw new Error(`worker-kill needs a cluster of two or more workers; found ${workers.length}`);
      // The busiest: round-robin may have left another worker without a single user to disturb.
      const [victim] = workers;
      process.kill(victim!.pid, "SIGKILL");
      const all = workers.map((w) => `${w.pid} (${w.connections} connections)`).join(", ");
      return `worker pid ${victim!.pid} of ${all} killed with SIGKILL`;
    },
  };
}

export async function prepareFaultEnvironment(
  specs: readonly FaultSpec[],
  stores: { databaseUrl: string; redisUrl: string },
): Promise<FaultEnvironment> {
  const kinds = new Set(specs.map((s) => s.kind));
  let redis: PrivateRedis | undefined;
  let proxy: TcpProxy | undefined;
  const close = async () => {
    await proxy?.close();
    await redis?.close();
  };
  try {
    if (kinds.has("redis-outage")) redis = await startPrivateRedis();
    if (kinds.has("postgres-outage")) {
      const target = new URL(stores.databaseUrl);
      proxy = await startTcpProxy(Number(target.port || 5432), target.hostname.replace(/^\[(.*)\]$/, "$1"));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    serverDatabaseUrl: proxy ? proxiedUrl(stores.databaseUrl, proxy.port) : stores.databaseUrl,
    redisUrl: redis?.url ?? stores.redisUrl,
    privateRedis: redis !== undefined,
    faults: (server) =>
      specs.map((spec) => {
        switch (spec.kind) {
          case "redis-outage":
            return redisOutage(spec, redis!);
          case "postgres-outage":
            return postgresOutage(spec, proxy!);
          case "worker-kill":
            return workerKill(spec, server);
        }
      }),
    close,
  };
}
