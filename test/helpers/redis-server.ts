// Private redis-server child processes on free ports: a single node for fault tests, so a test
// can kill and restart Redis without touching the shared instance on 6379, and a small Redis
// Cluster of masters for the cluster tests.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitFor } from "./wait.js";
import { accepts, freePort } from "../../src/loadtest/free-port.js";
import { loadConfig } from "../../src/config.js";
import { removeRedisKeys } from "../../src/loadtest/redis-cleanup.js";

const run = promisify(execFile);

export interface PrivateRedis {
  url: string;
  /** Kills the server (SIGKILL: no shutdown save) and waits for the process to exit. */
  kill(): Promise<void>;
  /** Starts a new, empty server on the same port. */
  start(): Promise<void>;
  /** Stops the server process (SIGSTOP): connections stay open and nothing answers until `thaw`. */
  freeze(): void;
  thaw(): void;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function startServer(port: number, extraArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs],
    { stdio: "ignore" },
  );
  await waitFor(() => accepts(port), { timeoutMs: 10_000, message: () => `redis-server on port ${port}` });
  return child;
}

async function killServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = await startServer(port);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: () => killServer(child!),
    start,
    freeze: () => child!.kill("SIGSTOP"),
    thaw: () => child!.kill("SIGCONT"),
  };
}

export interface PrivateRedisCluster {
  nodes: { host: string; port: number }[];
  /** Port of the master serving `key`'s hash slot. */
  masterPortOf(key: string): Promise<number>;
  /** Runs one redis-cli command against the node on `port` and returns its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Kills every node and removes their files. */
  stop(): Promise<void>;
}

/** A port whose cluster bus port (port + 10000, which redis-cli's cluster setup assumes) is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (!taken.has(port) && (await canListen(port)) && (await canListen(port + 10_000))) return port;
  }
}

/** `masters` cluster-enabled servers joined by `redis-cli --cluster create`, without replicas. */
export async function startPrivateRedisCluster(masters = 3): Promise<PrivateRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), "redis-cluster-"));
  const children: ChildProcess[] = [];
  const cli = async (port: number, ...args: string[]) => (await run("redis-cli", ["-p", String(port), ...args])).stdout;
  const stop = async () => {
    await Promise.all(children.map(killServer));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports = new Set<number>();
    while (ports.size < masters) ports.add(await freeClusterPort(ports));
    for (const port of ports) {
      children.push(
        await startServer(port, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, `nodes-${port}.conf`),
          "--dir",
          dir,
        ]),
      );
    }
    const addresses = [...ports].map((port) => `127.0.0.1:${port}`);
    await run("redis-cli", ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], {
      timeout: 60_000,
    });
    await waitFor(
      async () =>
        (await Promise.all([...ports].map((port) => cli(port, "cluster", "info")))).every((info) =>
          info.includes("cluster_state:ok"),
        ),
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        message: () => "cluster_state:ok on every node",
      },
    );
    const [first] = ports;
    return {
      nodes: [...ports].map((port) => ({ host: "127.0.0.1", port })),
      async masterPortOf(key) {
        const slot = Number(await cli(first!, "cluster", "keyslot", key));
        const slots = JSON.parse(await cli(first!, "--json", "cluster", "slots")) as [
          number,
          number,
          [string, number, ...unknown[]],
        ][];
        const range = slots.find(([from, to]) => slot >= from && slot <= to);
        if (!range) throw new Error(`no master serves slot ${slot}`);
        return range[2][1];
      },
      cli,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A Redis key prefix of its own for one test file (or app), so files share the default Redis safely. */
export function testKeyPrefix(label: string): string {
  return `test:${label}:${randomBytes(4).toString("hex")}:`;
}

/** Removes a test's keys from the default Redis (the server's REDIS_URL default). */
export async function removeTestKeys(prefix: string): Promise<void> {
  await removeRedisKeys(loadConfig({}).redisUrl, prefix);
}
