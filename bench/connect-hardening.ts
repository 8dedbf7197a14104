// `node --import tsx bench/connect-hardening.ts [--resets N] [--trickles N] [--streams N]
//   [--parts reset,trickle,streams]`
// The Connect port against abusive peers, on loopback, with figures: a Rapid Reset burst on one
// connection (streams sent before GOAWAY, time to GOAWAY, the slowest call another connection saw
// meanwhile), requests trickled byte by byte (how long each held its socket), and a burst of
// WatchQueue stream opens (health statuses and the slowest health check meanwhile). The server is
// src/main.ts as a child process on a fresh database, so the peers do not share its event loop.
// The other connection is already serving when the burst starts, and calls from a worker thread
// (call-prober.ts): the attacker's own sending loop cannot delay its calls.

import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { spawn } from "node:child_process";
import http2 from "node:http2";
import { parseArgs } from "node:util";
import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueService } from "../gen/concert/v1/queue_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { freePort } from "../src/loadtest/free-port.js";
import { createFreshDatabase } from "../src/loadtest/local-server.js";
import { removeRedisKeys } from "../src/loadtest/redis-cleanup.js";
import { createGrpcClient } from "../src/platform/rpc/grpc-client.js";
import { startCallProber } from "./call-prober.js";
import { trickleHttp1, trickleHttp2Body } from "../test/helpers/slow-peers.js";
import { loadConfig } from "../src/config.js";

const { values } = parseArgs({
  options: {
    resets: { type: "string", default: "50000" },
    trickles: { type: "string", default: "100" },
    streams: { type: "string", default: "3000" },
    parts: { type: "string", default: "reset,trickle,streams" },
  },
});
const PARTS = new Set(values.parts.split(","));
const RESETS = Number(values.resets);
const TRICKLES = Number(values.trickles);
const STREAMS = Number(values.streams);
const LIST_CONCERTS = "/concert.v1.BookingService/ListConcerts";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const config = loadConfig(process.env);
const runId = `hard_${process.pid}`;
const database = await createFreshDatabase(config.databaseUrl, runId);
const prefix = `bench:${runId}:`;
const [grpcPort, connectPort] = [await freePort(), await freePort()];
const server = spawn(process.execPath, ["--import", "tsx", new URL("../src/main.ts", import.meta.url).pathname], {
  env: {
    ...process.env,
    DATABASE_URL: database.url,
    REDIS_KEY_PREFIX: prefix,
    HOST: "127.0.0.1",
    PORT: String(grpcPort),
    CONNECT_PORT: String(connectPort),
    LOG_LEVEL: "error",
    MAX_ACTIVE_USERS: "1", // everyone else waits, so their WatchQueue streams stay open
  },
  stdio: ["ignore", "ignore", "inherit"],
});
const connectUrl = `http://127.0.0.1:${connectPort}`;
const health = createGrpcClient(Health, `127.0.0.1:${grpcPort}`);
const rows: string[][] = [];

try {
  for (let i = 0; ; i++) {
    try {
      const answer = await health.check({ service: "" }, { deadlineMs: 1000 });
      if (answer.status === HealthCheckResponse_ServingStatus.SERVING) break;
    } catch {
      if (i > 120) throw new Error("the server did not come up in 120 s");
    }
    await sleep(1000);
  }
  if (PARTS.has("reset")) {
    process.stderr.write("server up; rapid reset…\n");
    rows.push(...(await rapidReset()));
  }
  if (PARTS.has("trickle")) {
    process.stderr.write("trickled requests…\n");
    rows.push(...(await trickles()));
  }
  if (PARTS.has("streams")) {
    process.stderr.write(`${STREAMS} WatchQueue opens…\n`);
    rows.push(...(await streamBurst()));
  }
  console.log("| measurement | figure |\n| --- | ---: |");
  for (const [name, figure] of rows) console.log(`| ${name} | ${figure} |`);
} finally {
  health.close();
  server.kill("SIGTERM");
  await new Promise((resolve) => server.once("exit", resolve));
  await database.drop();
  await removeRedisKeys(config.redisUrl, prefix);
}

async function rapidReset(): Promise<string[][]> {
  const bystander = startCallProber(connectUrl, LIST_CONCERTS);
  await bystander.ready;
  const attacker = http2.connect(connectUrl);
  attacker.on("error", () => {});
  await new Promise((resolve) => attacker.once("connect", resolve));
  bystander.measure();
  const startedAt = performance.now();
  let goaway: { code: number; ms: number } | undefined;
  attacker.once("goaway", (code: number) => (goaway = { code, ms: performance.now() - startedAt }));
  let sent = 0;
  for (; sent < RESETS && !goaway && !attacker.destroyed; sent++) {
    const stream = attacker.request({ ":method": "POST", ":path": LIST_CONCERTS }, { endStream: false });
    stream.on("error", () => {});
    stream.close(http2.constants.NGHTTP2_CANCEL);
    if (sent % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
  }
  await sleep(2000);
  const slowest = await bystander.stop();
  attacker.destroy();
  return [
    ["rapid reset: streams opened and reset before GOAWAY", String(sent)],
    ["rapid reset: GOAWAY code", goaway ? String(goaway.code) : "none"],
    ["rapid reset: first reset → GOAWAY, ms", goaway ? goaway.ms.toFixed(0) : "—"],
    ["rapid reset: slowest call on another connection meanwhile, ms", slowest.toFixed(0)],
  ];
}

async function trickles(): Promise<string[][]> {
  const head = `POST ${LIST_CONCERTS} HTTP/1.1\r\nHost: x\r\n`;
  const [headers, bodies, h2] = await Promise.all([
    Promise.all(Array.from({ length: TRICKLES }, () => trickleHttp1(connectPort, head, "x", 500))),
    Promise.all(
      Array.from({ length: TRICKLES }, () =>
        trickleHttp1(connectPort, `${head}content-type: application/json\r\ncontent-length: 1000\r\n\r\n`, " ", 500),
      ),
    ),
    Promise.all(Array.from({ length: TRICKLES }, () => trickleHttp2Body(connectUrl, LIST_CONCERTS, 500))),
  ]);
  const longest = (lifetimes: number[]) => (Math.max(...lifetimes) / 1000).toFixed(1);
  return [
    [`trickled HTTP/1.1 headers (${TRICKLES} sockets): longest held, s`, longest(headers)],
    [`trickled HTTP/1.1 bodies (${TRICKLES} sockets): longest held, s`, longest(bodies)],
    [`trickled HTTP/2 bodies (${TRICKLES} streams): longest held, s`, longest(h2)],
  ];
}

async function streamBurst(): Promise<string[][]> {
  const transport = createConnectTransport({ baseUrl: connectUrl, httpVersion: "2" });
  const booking = createClient(BookingService, transport);
  const queue = createClient(QueueService, transport);
  const concertId = (await booking.listConcerts({})).concerts[0]!.id;
  const tokens: string[] = [];
  for (let i = 0; i < STREAMS; i += 200) {
    const batch = Array.from({ length: Math.min(200, STREAMS - i) }, (_, j) =>
      queue.joinQueue({ concertId, userId: `hard-${i + j}` }).then((answer) => answer.token),
    );
    tokens.push(...(await Promise.all(batch)));
  }
  const statuses = new Map<string, number>();
  let slowest = 0;
  let stop = false;
  const probing = (async () => {
    while (!stop) {
      const startedAt = performance.now();
      try {
        const answer = await health.check({ service: "" }, { deadlineMs: 30_000 });
        const name = HealthCheckResponse_ServingStatus[answer.status];
        statuses.set(name, (statuses.get(name) ?? 0) + 1);
      } catch {
        statuses.set("error", (statuses.get("error") ?? 0) + 1);
      }
      slowest = Math.max(slowest, performance.now() - startedAt);
      await sleep(100);
    }
  })();
  const abort = new AbortController();
  const opened = tokens.map(async (token) => {
    try {
      for await (const _ of queue.watchQueue({ token }, { signal: abort.signal })) void _;
    } catch {
      // ended by the abort below
    }
  });
  await sleep(15_000);
  abort.abort();
  await Promise.all(opened);
  stop = true;
  await probing;
  return [
    [
      `${STREAMS} WatchQueue opens at once: health answers over 15 s`,
      [...statuses].map(([k, v]) => `${k} ${v}`).join(", "),
    ],
    [`${STREAMS} WatchQueue opens at once: slowest health check, ms`, slowest.toFixed(0)],
  ];
}
