// Server processes under test: started pinned to one core (taskset), read through /proc.

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ServerKind } from "./server.js";

const SERVER_ENTRY = fileURLToPath(new URL("./server.ts", import.meta.url));
/** Linux reports CPU time in clock ticks; USER_HZ is 100 on every mainstream kernel build. */
const TICKS_PER_SECOND = 100;

export interface ServerProcess {
  kind: ServerKind;
  pid: number;
  ports: Record<string, number>;
  /** user + system CPU seconds used so far. */
  cpuSeconds(): number;
  rssMb(): number;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** CPU list for taskset: one core (3) or several ("0-1"). */
  core: number | string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  env?: Record<string, string>;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()));
}

export async function startServer(kind: ServerKind, options: SpawnOptions): Promise<ServerProcess> {
  const node = process.execPath;
  const child = spawn(
    "taskset",
    ["-c", String(options.core), node, ...(options.nodeFlags ?? []), "--import", "tsx", SERVER_ENTRY, kind],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...options.env },
    },
  );
  const ports = await new Promise<Record<string, number>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start within 60 s`)), 60_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { ports: Record<string, number> }).ports);
      } catch {
        reject(new Error(`${kind} server printed "${line}" instead of its ports`));
      }
    });
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code} before listening`)));
  });
  // taskset execs node, so the child's pid is the server's.
  const pid = child.pid!;
  return {
    kind,
    pid,
    ports,
    cpuSeconds() {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      // Fields 14 and 15 of /proc/PID/stat (utime, stime); index 0 here is field 3.
      return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    },
    rssMb() {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return match ? Number(match[1]) / 1024 : NaN;
    },
    async stop() {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited(child);
      clearTimeout(killer);
    },
  };
}

/** Pins this process (every thread) to a CPU list such as "1" or "0-1". */
export async function pinSelf(cpuList: string): Promise<boolean> {
  const child = spawn("taskset", ["-a", "-cp", cpuList, String(process.pid)], { stdio: "ignore" });
  return new Promise((resolve) => {
    child.once("error", () => resolve(false));
    child.once("exit", (code) => resolve(code === 0));
  });
}
