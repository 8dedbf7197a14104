// WatchQueue soak: N users join, then hold N WatchQueue streams open against a server running in
// a child process, sampling the server's RSS and CPU from /proc every few seconds. The waiting
// room is full (one slot, held for an hour), so every stream stays open and receives only
// heartbeats: the cost measured is that of holding streams, the per-concert ticker included.
//
//   node --import tsx bench/watch-soak.ts [--transport grpc|connect] [--streams N] [--duration S]
//     [--heap-snapshots]   write server heap snapshots (to the OS temp dir) after the streams
//                          open and at the end

import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueService } from "../gen/concert/v1/queue_pb.js";
import { startApp } from "../src/app.js";
import { seedCatalog } from "../src/platform/db/seed.js";
import { createLogger } from "../src/platform/logger.js";
import { createGrpcClient, type GrpcClient } from "../src/platform/rpc/grpc-client.js";
import { createTestDatabase } from "../test/helpers/database.js";
import { formatNumber, markdownTable } from "./report.js";
import { removeRedisKeys } from "../src/loadtest/redis-cleanup.js";
import { benchConfig } from "./bench-config.js";

const CHANNELS = 16;
const SAMPLE_MS = 5000;
const SNAPSHOT_DIR = tmpdir();
/** Prefix of the child's "listening" line; its logs share stdout. */
const READY = "watch-soak ready ";

interface ServerInfo {
  grpcPort: number;
  connectPort: number;
}

/** Child mode: the application with a full waiting room, until SIGTERM. */
async function serve(): Promise<void> {
  const database = await createTestDatabase("watch_soak");
  const config = benchConfig(database.url, "soak", {
    maxActiveUsers: 1,
    activeTokenTtlSeconds: 3600,
    waitingTokenTtlSeconds: 3600,
  });
  const app = await startApp(config, createLogger(config.logLevel, { bench: "watch-soak" }));
  await seedCatalog(app.orm.em.fork(), { concerts: 1, schedules: 1, seats: 10 });
  process.stdout.write(
    `${READY}${JSON.stringify({ grpcPort: app.grpcPort, connectPort: app.connectPort } satisfies ServerInfo)}\n`,
  );
  // The parent asks for samples over IPC: heap figures, not only RSS, show whether memory grows.
  process.on("message", () => {
    // After a full collection the heap figure is what is retained, not garbage awaiting GC.
    (globalThis as { gc?: () => void }).gc?.();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    const { user, system } = process.cpuUsage();
    process.send!({
      rss,
      heapUsed,
      external: external + arrayBuffers,
      cpuSeconds: (user + system) / 1e6,
    } satisfies Sample);
  });
  process.once("SIGTERM", () => {
    void app
      .stop()
      .then(() => database.drop())
      .then(() => removeRedisKeys(config.redisUrl, config.redisKeyPrefix))
      .then(() => process.exit(0));
  });
}

function startServer(heapSnapshots: boolean): Promise<{ child: ChildProcess; info: ServerInfo }> {
  const args = [
    "--import",
    "tsx",
    "--expose-gc",
    ...(heapSnapshots ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${SNAPSHOT_DIR}`] : []),
    import.meta.filename,
    "--serve",
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const lines = out.split("\n");
      out = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith(READY)) resolve({ child, info: JSON.parse(line.slice(READY.length)) as ServerInfo });
        else process.stderr.write(`server: ${line}\n`);
      }
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

interface Sample {
  rss: number;
  heapUsed: number;
  /** Off-heap buffers (external + ArrayBuffers). */
  external: number;
  cpuSeconds: number;
}

function sample(child: ChildProcess): Promise<Sample> {
  return new Promise((resolve) => {
    child.once("message", (message) => resolve(message as Sample));
    child.send("sample");
  });
}

const mb = (bytes: number) => formatNumber(bytes / 1024 / 1024);

async function joinAll(
  clients: GrpcClient<typeof QueueService>[],
  concertId: string,
  count: number,
): Promise<string[]> {
  const tokens: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < count) {
        const i = next++;
        tokens[i] = (await clients[i % clients.length]!.joinQueue({ concertId, userId: `soak-${i}` })).token;
      }
    }),
  );
  return tokens;
}

async function soak(options: {
  transport: "grpc" | "connect";
  streams: number;
  durationSec: number;
  heapSnapshots: boolean;
}): Promise<void> {
  const { child, info } = await startServer(options.heapSnapshots);
  const grpcAddress = `127.0.0.1:${info.grpcPort}`;
  const grpcClients = Array.from({ length: CHANNELS }, (_, i) =>
    createGrpcClient(QueueService, grpcAddress, { "grpc.soak-channel": i }),
  );
  const connectClients: Client<typeof QueueService>[] = Array.from({ length: CHANNELS }, () =>
    createClient(
      QueueService,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${info.connectPort}`, httpVersion: "2" }),
    ),
  );
  const abort = new AbortController();
  try {
    const booking = createGrpcClient(BookingService, grpcAddress);
    const concertId = (await booking.listConcerts({})).concerts[0]!.id;
    booking.close();
    const idle = await sample(child);
    const tokens = await joinAll(grpcClients, concertId, options.streams + 1);
    process.stderr.write(`soak: ${tokens.length} joined; opening ${options.streams} ${options.transport} streams\n`);

    // Without a deadline the server applies DEFAULT_DEADLINE_MS (30 s) and real clients reconnect;
    // the soak keeps each stream for the whole run instead.
    const deadlineMs = (options.durationSec + 60) * 1000;
    let open = 0;
    let messages = 0;
    let failures = 0;
    const watchers = tokens.slice(1).map(async (token, i) => {
      const stream =
        options.transport === "grpc"
          ? grpcClients[i % CHANNELS]!.watchQueue({ token }, { signal: abort.signal, deadlineMs })
          : connectClients[i % CHANNELS]!.watchQueue({ token }, { signal: abort.signal, timeoutMs: deadlineMs });
      let counted = false;
      try {
        for await (const _ of stream) {
          messages++;
          if (!counted) {
            counted = true;
            open++;
          }
        }
      } catch (error) {
        if (!abort.signal.aborted && failures++ === 0)
          process.stderr.write(`soak: first failed stream: ${String(error)}\n`);
      } finally {
        if (counted) open--;
      }
    });

    const rows: (string | number)[][] = [];
    const started = Date.now();
    let previous = await sample(child);
    let previousMessages = 0;
    const record = async (label: string) => {
      const now = await sample(child);
      const cpu = ((now.cpuSeconds - previous.cpuSeconds) * 100_000) / SAMPLE_MS;
      rows.push([
        label,
        formatNumber(open),
        mb(now.rss),
        mb(now.heapUsed),
        mb(now.external),
        formatNumber(cpu, 1),
        formatNumber(((messages - previousMessages) * 1000) / SAMPLE_MS),
        failures,
      ]);
      process.stderr.write(`soak: ${rows.at(-1)!.join(" | ")}\n`);
      previous = now;
      previousMessages = messages;
    };
    rows.push(["before streams", 0, mb(idle.rss), mb(idle.heapUsed), mb(idle.external), "–", "–", 0]);
    while (Date.now() - started < options.durationSec * 1000) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      await record(`${Math.round((Date.now() - started) / 1000)} s`);
      if (options.heapSnapshots && rows.length === 3) child.kill("SIGUSR2");
    }
    if (options.heapSnapshots) child.kill("SIGUSR2");
    abort.abort();
    await Promise.all(watchers);
    process.stdout.write(
      markdownTable({
        title: `${formatNumber(options.streams)} WatchQueue streams on the ${options.transport === "grpc" ? "gRPC (grpc-js)" : "Connect (connect-node, HTTP/2)"} port`,
        note: `Server process only (client in another process); one concert, everyone waiting behind one held slot, heartbeats every 4 s. CPU % of one core over each ${SAMPLE_MS / 1000} s interval.`,
        columns: [
          "time",
          "streams open",
          "RSS MB",
          "heap after GC MB",
          "off-heap MB",
          "CPU %",
          "messages/s",
          "failed streams",
        ],
        rows,
      }),
    );
    if (options.heapSnapshots)
      process.stderr.write(
        `soak: heap snapshots in ${SNAPSHOT_DIR}: ${readdirSync(SNAPSHOT_DIR)
          .filter((f) => f.endsWith(".heapsnapshot"))
          .join(", ")}\n`,
      );
  } finally {
    abort.abort();
    for (const client of grpcClients) client.close();
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    transport: { type: "string", default: "grpc" },
    streams: { type: "string", default: "10000" },
    duration: { type: "string", default: "60" },
    "heap-snapshots": { type: "boolean", default: false },
  },
});
if (values.serve) {
  await serve();
} else {
  if (values.transport !== "grpc" && values.transport !== "connect")
    throw new Error("--transport must be grpc or connect");
  await soak({
    transport: values.transport,
    streams: Number(values.streams),
    durationSec: Number(values.duration),
    heapSnapshots: values["heap-snapshots"],
  });
  process.exit(0);
}
