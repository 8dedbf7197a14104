// Records a CPU profile of a running Node process through its inspector (`node --inspect`), for
// exactly the window between start and SIGINT/SIGTERM: `--cpu-prof` would cover start-up and
// seeding too. It also saves what the summary needs to name frames: the source maps of the
// project's own scripts (tsx transpiles them, so the profile's lines are not the .ts lines) and
// the main thread's CPU time over the window from /proc (Linux), which the summary spreads over
// the busy samples, so a thread that waits for a core on a loaded machine is not counted as busy.
//
//   node --import tsx bench/cpu-profile-record.ts --inspector ws://127.0.0.1:9229/<id> --pid N \
//     --out FILE [--interval-us 1000] [--ready FILE]
//
// Prints nothing on stdout; the profile file is JSON: { profile, sourceMaps, mainThread: { userMs, systemMs } }.

import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    inspector: { type: "string" },
    pid: { type: "string" },
    out: { type: "string" },
    "interval-us": { type: "string", default: "1000" },
    ready: { type: "string" },
  },
});
if (!values.inspector || !values.pid || !values.out) {
  process.stderr.write("cpu-profile-record: --inspector WS_URL, --pid N and --out FILE are required\n");
  process.exit(2);
}
const pid = Number(values.pid);
const ticksPerSecond = 100; // USER_HZ: /proc reports clock ticks of 1/100 s on Linux

/** User and system CPU time of the process's main thread (its thread id is the pid), in ms. */
function mainThreadCpuMs(): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return { user: (Number(fields[11]) * 1000) / ticksPerSecond, system: (Number(fields[12]) * 1000) / ticksPerSecond };
}

interface Pending {
  resolve: (result: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

const socket = new WebSocket(values.inspector);
const pending = new Map<number, Pending>();
const scripts: { url: string; sourceMapURL: string }[] = [];
let nextId = 1;

socket.addEventListener("message", (event) => {
  const message = JSON.parse(String(event.data)) as {
    id?: number;
    method?: string;
    params?: { url: string; sourceMapURL?: string };
    result?: Record<string, unknown>;
    error?: { message: string };
  };
  if (message.method === "Debugger.scriptParsed" && message.params?.sourceMapURL) {
    scripts.push({ url: message.params.url, sourceMapURL: message.params.sourceMapURL });
  }
  if (message.id === undefined) return;
  const waiting = pending.get(message.id);
  pending.delete(message.id);
  if (message.error) waiting?.reject(new Error(message.error.message));
  else waiting?.resolve(message.result ?? {});
});

function send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const id = nextId++;
  socket.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

/** Source maps of the project's scripts only: inline data URLs, decoded. */
function projectSourceMaps(): Record<string, unknown> {
  const root = new URL("..", import.meta.url).href;
  const maps: Record<string, unknown> = {};
  for (const { url, sourceMapURL } of scripts) {
    if (!url.startsWith(root) || url.includes("/node_modules/")) continue;
    const base64 = /^data:application\/json[^,]*;base64,(.*)$/.exec(sourceMapURL)?.[1];
    if (base64) maps[url] = JSON.parse(Buffer.from(base64, "base64").toString("utf8"));
  }
  return maps;
}

async function record(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error(`cannot connect to ${values.inspector}`)), { once: true });
  });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: Number(values["interval-us"]) });
  const cpuBefore = mainThreadCpuMs();
  await send("Profiler.start");
  if (values.ready) writeFileSync(values.ready, "recording\n");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve).once("SIGTERM", resolve);
  });
  const cpuAfter = mainThreadCpuMs();
  const { profile } = await send("Profiler.stop");
  const mainThread = { userMs: cpuAfter.user - cpuBefore.user, systemMs: cpuAfter.system - cpuBefore.system };
  // Only now, with the window closed: enabling the debugger replays every script it has parsed.
  await send("Debugger.enable");
  await send("Debugger.disable");
  writeFileSync(values.out!, JSON.stringify({ profile, sourceMaps: projectSourceMaps(), mainThread }));
  socket.close();
}

record().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`cpu-profile-record: ${error.message}\n`);
    process.exit(1);
  },
);
