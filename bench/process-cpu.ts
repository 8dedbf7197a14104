// CPU seconds (user + system, from /proc/<pid>/stat) of the processes a front-door benchmark
// shares the cores with: the server (found by its listening port, with the workers it forked), the PostgreSQL backends of one
// database (their process title names it), Redis (by its port) and this process. On a machine
// shared with other work, these are the figures to compare between two versions of the code;
// latency there mostly measures the neighbours. Linux only.

import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

const TICKS_PER_S = 100;

function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return 0; // gone meanwhile
  }
}

function listenerPids(port: number): number[] {
  const out = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
  return [...new Set([...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))];
}

/** The processes `pids` forked (a cluster primary's workers, which share its listening socket). */
function childPids(pids: readonly number[]): number[] {
  const parents = new Set(pids);
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return parents.has(Number(stat.slice(stat.lastIndexOf(") ") + 2).split(" ")[1]));
      } catch {
        return false;
      }
    });
}

function backendPids(database: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(` ${database} `);
      } catch {
        return false;
      }
    });
}

export interface CpuSnapshot {
  server: number;
  postgres: number;
  redis: number;
  self: number;
  atMs: number;
}

/** Snapshots of the same processes; backends are looked up again each time (the pool grows). */
export function createCpuMeter(options: { serverPort: number; redisPort: number; database: string }) {
  const listeners = listenerPids(options.serverPort);
  const servers = [...listeners, ...childPids(listeners)];
  const redis = listenerPids(options.redisPort);
  return {
    snapshot(): CpuSnapshot {
      // A backend that appears between two snapshots counts whole: it did all its work since.
      const postgres = backendPids(options.database).reduce((sum, pid) => sum + cpuOf(pid), 0);
      const self = process.cpuUsage();
      return {
        server: servers.reduce((sum, pid) => sum + cpuOf(pid), 0),
        postgres,
        redis: redis.reduce((sum, pid) => sum + cpuOf(pid), 0),
        self: (self.user + self.system) / 1e6,
        atMs: performance.now(),
      };
    },
  };
}

/** One line: CPU seconds of each process between two snapshots, and per `per` items in ms. */
export function formatCpu(label: string, from: CpuSnapshot, to: CpuSnapshot, per: number): string {
  const parts = (["server", "postgres", "redis", "self"] as const).map((key) => {
    const s = to[key] - from[key];
    return `${key === "self" ? "load generator" : key} ${s.toFixed(2)} s (${((s * 1000) / per).toFixed(3)} ms each)`;
  });
  return `${label}: ${((to.atMs - from.atMs) / 1000).toFixed(2)} s wall; CPU ${parts.join(", ")}`;
}
