// A redis-server child process of the load test's own, for `--fault redis-outage`: the fault
// kills this one, never a Redis that others share. It keeps its data the way production does
// (docker-compose.yml runs Redis with an append-only file), so a restart brings back the event
// stream; appendfsync is `always` rather than production's `everysec` so that no acknowledged
// write is lost to the kill, which keeps the audit's stream check exact.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accepts, freePort } from "./free-port.js";

export interface PrivateRedis {
  url: string;
  pid(): number | undefined;
  /** SIGKILL, as a crash: no shutdown, no final save; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port; it replays its append-only file. */
  start(): Promise<void>;
  /** Kills the server and removes its files. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

async function launch(port: number, dir: string): Promise<ChildProcess> {
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
  ];
  const child = spawn("redis-server", args, { stdio: "ignore" });
  let failure: Error | undefined;
  child.once("error", (error) => (failure = new Error(`cannot run redis-server (is it on PATH?): ${error.message}`)));
  child.once(
    "exit",
    (code, signal) => (failure ??= new Error(`redis-server exited at start (${signal ?? `code ${code}`})`)),
  );
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(port))) {
    if (failure) throw failure;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not accept connections on port ${port} within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return child;
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "loadtest-redis-"));
  let child: ChildProcess | undefined;
  try {
    child = await launch(port, dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: () => child?.pid,
    kill: () => kill(child),
    async start() {
      child = await launch(port, dir);
    },
    async close() {
      await kill(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
