// CPU profile of the adapter under h2load load: where its per-call time goes. The server runs
// with --cpu-prof; self time is summed per function from the samples of the .cpuprofile.

import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { formatNumber, type BenchTable } from "../report.js";
import { startServer } from "./child.js";
import { h2loadUnary, LIST_CONCERTS_PATH } from "./load.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface SelfTime {
  frame: string;
  selfMs: number;
  share: number;
}

/** Self time per function (name + file:line), largest first. */
export function topSelfTime(profile: CpuProfile, limit: number): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.startsWith("file://") ? relative(ROOT, fileURLToPath(url)) : url;
    const frame = file ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName;
    const us = profile.timeDeltas[i] ?? 0;
    totals.set(frame, (totals.get(frame) ?? 0) + us);
    all += us;
  });
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, share: us / all }));
}

export async function profileAdapter(options: {
  durationSec: number;
  concurrency: number;
  body: string;
  serverCore: number;
  loadCore: number;
  log: (line: string) => void;
}): Promise<BenchTable> {
  const dir = join(ROOT, "reports", "profiles", new Date().toISOString().replaceAll(":", "-"));
  mkdirSync(dir, { recursive: true });
  options.log(`transport: profiling the adapter (${dir})`);
  const server = await startServer("adapter", {
    core: options.serverCore,
    nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
  });
  try {
    await h2loadUnary(server, {
      url: `http://127.0.0.1:${server.ports.grpc}${LIST_CONCERTS_PATH}`,
      bodyFile: options.body,
      durationSec: options.durationSec,
      concurrency: options.concurrency,
      core: options.loadCore,
    });
  } finally {
    await server.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  const top = topSelfTime(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile, 25);
  return {
    title: "Adapter profile: top self-time frames under h2load (unary no-op)",
    note: `\`node --cpu-prof\` on the adapter server; profile at ${relative(ROOT, join(dir, file))} (open it in Chrome DevTools). Share of all samples, start-up included.`,
    columns: ["frame", "self ms", "share"],
    rows: top.map((t) => [t.frame, formatNumber(t.selfMs), `${formatNumber(t.share * 100, 1)} %`]),
  };
}
