// Summarizes a server CPU profile from bench/cpu-profile-record.ts as markdown tables: main-thread
// CPU by RPC kind (plus background tasks and the layers no RPC can be read from), self time by
// package, and the top functions. How a sample is attributed is in bench/cpu-profile-rules.ts;
// bench/loadtest-cpu.sh explains the method and its limits.
//
//   node --import tsx bench/cpu-profile-summary.ts --profile FILE --seats N [--server-cpu-s S]
//     [--metrics-before FILE --metrics-after FILE] [--transactions N] [--statements N]
//     [--statement-owners FILE (from bench/pg-statement-owners.ts)] [--top N]

import { readFileSync } from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatNumber, markdownTable, type BenchTable } from "./report.js";
import {
  BACKGROUND_KINDS,
  LAYER_KINDS,
  OTHER_KIND,
  POSTGRES_CLIENT_KINDS,
  RPC_NAMES,
  SPECIAL_KINDS,
  isSocketWrite,
  kindOfStack,
  layerOfLeaf,
  type Frame,
} from "./cpu-profile-rules.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Recording {
  profile: { nodes: ProfileNode[]; samples: number[] };
  sourceMaps: Record<string, SourceMapPayload>;
  mainThread: { userMs: number; systemMs: number };
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: {
    profile: { type: "string" },
    seats: { type: "string" },
    "server-cpu-s": { type: "string" },
    "metrics-before": { type: "string" },
    "metrics-after": { type: "string" },
    transactions: { type: "string" },
    "statement-owners": { type: "string" },
    statements: { type: "string" },
    top: { type: "string", default: "15" },
  },
});
if (!values.profile || !values.seats) {
  process.stderr.write("cpu-profile-summary: --profile FILE and --seats N are required\n");
  process.exit(2);
}
const recording = JSON.parse(readFileSync(values.profile, "utf8")) as Recording;
const seats = Math.max(1, Number(values.seats));

const maps = new Map(Object.entries(recording.sourceMaps).map(([url, payload]) => [url, new SourceMap(payload)]));
const sourceLines = new Map<string, string[]>();

/** The key of the method-table entry whose `handle` starts at `line` (`reserveSeat: {` above it). */
function tableKeyAbove(source: string, line: number): string | undefined {
  const lines = sourceLines.get(source) ?? readFileSync(source, "utf8").split("\n");
  sourceLines.set(source, lines);
  const indent = (text: string) => text.length - text.trimStart().length;
  const own = indent(lines[line] ?? "");
  for (let i = line - 1; i >= 0; i--) {
    const match = /^\s*(\w+): \{\s*$/.exec(lines[i]!);
    if (match && indent(lines[i]!) < own) return match[1];
  }
  return undefined;
}

/** Frame name and position as a reader of the TypeScript sources knows them. */
function resolve(frame: CallFrame): Frame & { line: number } {
  const map = maps.get(frame.url);
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
  if (entry && "originalSource" in entry) {
    const source = entry.originalSource.startsWith("file://")
      ? fileURLToPath(entry.originalSource)
      : entry.originalSource;
    let name = frame.functionName || "(anonymous)";
    if (name === "handle") name = tableKeyAbove(source, entry.originalLine) ?? name;
    return { file: relative(ROOT, source), name, line: entry.originalLine };
  }
  const file = frame.url.startsWith("file://") ? relative(ROOT, fileURLToPath(frame.url)) : frame.url;
  return { file, name: frame.functionName || "(anonymous)", line: frame.lineNumber };
}

const { nodes, samples } = recording.profile;
const byId = new Map(nodes.map((node) => [node.id, node]));
const parentOf = new Map<number, number>();
for (const node of nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const frames = new Map(nodes.map((node) => [node.id, resolve(node.callFrame)]));

function stackOf(id: number): Frame[] {
  const stack: Frame[] = [];
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    if (byId.get(at)!.callFrame.functionName !== "(root)") stack.unshift(frames.get(at)!);
  }
  return stack;
}

const samplesOfNode = new Map<number, number>();
for (const id of samples) samplesOfNode.set(id, (samplesOfNode.get(id) ?? 0) + 1);
const idleKind = SPECIAL_KINDS["(idle)"]!;
const kindOfNode = new Map([...samplesOfNode.keys()].map((id) => [id, kindOfStack(stackOf(id))]));
const sum = (filter: (id: number) => boolean) =>
  [...samplesOfNode].reduce((total, [id, count]) => total + (filter(id) ? count : 0), 0);
const idle = sum((id) => kindOfNode.get(id) === idleKind);
const busySamples = Math.max(1, samples.length - idle);
const writeSamples = sum((id) => isSocketWrite(frames.get(id)!));
const { userMs, systemMs } = recording.mainThread;
const mainThreadMs = userMs + systemMs;
// The sampler runs on wall-clock time: a thread that loses its core inside a socket write (the
// write wakes PostgreSQL or the client) is sampled there until it runs again. The kernel's share
// of a write is system time, so write samples are weighted down until they claim no more CPU
// than the thread's whole system time; the rest was waiting.
const writeWeight =
  writeSamples === 0 || (writeSamples * mainThreadMs) / busySamples <= systemMs
    ? 1
    : (systemMs * (busySamples - writeSamples)) / (userMs * writeSamples);
const busy = busySamples - writeSamples * (1 - writeWeight);
const msPerSample = mainThreadMs / busy;

const byKind = new Map<string, number>();
const byLayer = new Map<string, number>();
const byFunction = new Map<string, number>();
const add = (map: Map<string, number>, key: string, count: number) => map.set(key, (map.get(key) ?? 0) + count);
for (const [id, count] of samplesOfNode) {
  const kind = kindOfNode.get(id)!;
  if (kind === idleKind) continue;
  const leaf = frames.get(id)!;
  const weighted = isSocketWrite(leaf) ? count * writeWeight : count;
  add(byKind, kind, weighted);
  add(byLayer, layerOfLeaf(leaf), weighted);
  add(byFunction, leaf.file ? `${leaf.name} ${leaf.file}:${leaf.line + 1}` : leaf.name, weighted);
}

/** Completed calls per RPC name between two scrapes of GET /metrics (all transports and codes). */
function callsBetween(beforeFile?: string, afterFile?: string): Map<string, number> {
  const calls = new Map<string, number>();
  if (!beforeFile || !afterFile) return calls;
  const read = (file: string, sign: number) => {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const match = /^rpc_server_calls_total\{.*method="\w+\/(\w+)".*\} (\d+)/.exec(line);
      if (match) calls.set(match[1]!, (calls.get(match[1]!) ?? 0) + sign * Number(match[2]));
    }
  };
  read(beforeFile, -1);
  read(afterFile, 1);
  return calls;
}
const calls = callsBetween(values["metrics-before"], values["metrics-after"]);

const share = (count: number) => `${formatNumber((count / busy) * 100, 1)} %`;
const cpuS = (count: number) => formatNumber((count * msPerSample) / 1000, 1);
const perSeat = (count: number) => formatNumber((count * msPerSample) / seats, 2);
const byCount = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);

/** The first `limit` entries and one row that sums the rest. */
function topWithRest(entries: [string, number][], limit: number): [string, number][] {
  if (entries.length <= limit + 1) return entries;
  const rest = entries.slice(limit).reduce((sum, [, count]) => sum + count, 0);
  return [...entries.slice(0, limit), [`${entries.length - limit} more`, rest]];
}

/** Queries by the RPC that sent them, from bench/pg-statement-owners.ts. */
const queryOwners = values["statement-owners"]
  ? new Map(Object.entries(JSON.parse(readFileSync(values["statement-owners"], "utf8")) as Record<string, number>))
  : undefined;

const kindRows: string[][] = [];
let pgClientMs = 0;
const rpcs = byCount(byKind).filter(([kind]) => RPC_NAMES.has(kind));
for (const name of calls.keys()) if (!byKind.has(name) && (calls.get(name) ?? 0) > 0) rpcs.push([name, 0]);
for (const [kind, count] of rpcs) {
  const n = calls.get(kind) ?? 0;
  const perCall = n > 0 ? formatNumber(((count * msPerSample) / n) * 1000) : "–";
  kindRows.push([kind, share(count), cpuS(count), perSeat(count), n > 0 ? formatNumber(n) : "–", perCall]);
}
const rest = [...BACKGROUND_KINDS, ...LAYER_KINDS, SPECIAL_KINDS["(garbage collector)"]!, SPECIAL_KINDS["(program)"]!];
for (const kind of [...rest, OTHER_KIND]) {
  const count = byKind.get(kind) ?? 0;
  kindRows.push([kind, share(count), cpuS(count), perSeat(count), "", ""]);
  if (kind !== POSTGRES_CLIENT_KINDS.at(-1)) continue;
  // The client's work per statement (or per transaction, without pg_stat_statements): the figure
  // that fewer round trips would cut.
  const client = POSTGRES_CLIENT_KINDS.reduce((total, k) => total + (byKind.get(k) ?? 0), 0);
  const [unit, n] = queryOwners
    ? ["queries", [...queryOwners.values()].reduce((sum, count) => sum + count, 0)]
    : values.statements
      ? ["statements", Number(values.statements)]
      : ["transactions", Number(values.transactions ?? 0)];
  pgClientMs = client * msPerSample;
  const perUnit = n > 0 ? formatNumber(((client * msPerSample) / n) * 1000) : "–";
  kindRows.push([
    `PostgreSQL client, subtotal of the rows above (calls: ${unit})`,
    share(client),
    cpuS(client),
    perSeat(client),
    n > 0 ? formatNumber(n) : "–",
    perUnit,
  ]);
}
kindRows.push(["**main thread**", "100.0 %", cpuS(busy), perSeat(busy), "", ""]);
kindRows.push([
  `idle: ${formatNumber((idle / samples.length) * 100, 1)} % of the samples (waiting for I/O, no CPU)`,
  "",
  "",
  "",
  "",
  "",
]);
const serverCpuS = Number(values["server-cpu-s"]);
if (Number.isFinite(serverCpuS) && values["server-cpu-s"] !== undefined) {
  const otherMs = serverCpuS * 1000 - mainThreadMs;
  kindRows.push([
    "other threads (GC helpers, libuv pool, profiler)",
    "",
    formatNumber(otherMs / 1000, 1),
    formatNumber(otherMs / seats, 2),
    "",
    "",
  ]);
}

const tables: BenchTable[] = [
  {
    title: "Server CPU by RPC kind (main thread, CPU profile)",
    note:
      `${formatNumber(samples.length)} samples, ${formatNumber((idle / samples.length) * 100, 1)} % idle; ` +
      `main-thread CPU ${formatNumber(mainThreadMs / 1000, 1)} s (user ${formatNumber(userMs / 1000, 1)}, ` +
      `system ${formatNumber(systemMs / 1000, 1)}) spread over the busy samples` +
      (writeWeight < 1
        ? `, samples in socket writes weighted ${formatNumber(writeWeight, 2)} (wall-clock sampling: beyond the system time they were waiting for a core)`
        : "") +
      `; per booked seat: ${formatNumber(seats)} seats. Calls: completed RPCs from GET /metrics.`,
    columns: ["work", "share of main-thread CPU", "CPU s", "ms per seat", "calls", "µs per call"],
    rows: kindRows,
  },
  {
    title: "Server main-thread self time by package",
    columns: ["code", "share of main-thread CPU", "CPU s", "ms per seat"],
    rows: topWithRest(byCount(byLayer), Number(values.top)).map(([layer, count]) => [
      layer,
      share(count),
      cpuS(count),
      perSeat(count),
    ]),
  },
  {
    title: `Server top ${values.top} functions by self time`,
    columns: ["function", "share of main-thread CPU", "ms per seat"],
    rows: byCount(byFunction)
      .slice(0, Number(values.top))
      .map(([fn, count]) => [`\`${fn}\``, share(count), perSeat(count)]),
  },
];
if (queryOwners) tables.splice(1, 0, queryOwnersTable(queryOwners));
process.stdout.write(tables.map(markdownTable).join("\n"));

/** Queries by the RPC they were sent for, as bench/pg-statement-owners.ts counted them. */
function queryOwnersTable(owners: Map<string, number>): BenchTable {
  const total = Math.max(
    1,
    [...owners.values()].reduce((sum, n) => sum + n, 0),
  );
  return {
    title: "Server queries by RPC kind (pg driver round trips)",
    note:
      `${formatNumber(total)} queries sent by the server's pg driver, BEGIN and COMMIT included: ` +
      `${formatNumber(total / seats, 1)} per booked seat, each counted for the RPC whose call sent it ` +
      "(AsyncLocalStorage around each grpc-js handler) or for the background task on its async stack. " +
      "One query may hold several statements (`begin; set local lock_timeout = …`), which pg_stat_statements counts apart. " +
      "Client CPU: the PostgreSQL-client subtotal above, shared out by queries (an estimate: queries differ in cost).",
    columns: ["work", "share of queries", "queries per seat", "per call", "client CPU ms per seat (est.)"],
    rows: byCount(owners).map(([kind, n]) => [
      kind,
      `${formatNumber((n / total) * 100, 1)} %`,
      formatNumber(n / seats, 2),
      calls.get(kind) ? formatNumber(n / calls.get(kind)!, 1) : "",
      formatNumber(((n / total) * pgClientMs) / seats, 2),
    ]),
  };
}
