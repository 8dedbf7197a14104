// The Connect port's connections: ones that stall (nothing sent, a header line never finished,
// an idle HTTP/2 session) are closed instead of held open forever, and one HTTP/2 connection
// survives more failed streams than Node's default Rapid Reset budget (a backend-for-frontend
// carries a crowd's streams on one connection, and a Connect client resets each failed stream).

import { Code, ConnectError } from "@connectrpc/connect";
import test from "ava";
import http2 from "node:http2";
import net from "node:net";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { createConnectServer, type ConnectServer } from "../../src/platform/rpc/connect-server.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";

let bare: ConnectServer;
let barePort: number;
let app: TestApp;

test.before(async () => {
  bare = createConnectServer({ services: [], readMaxBytes: 1024, firstByteTimeoutMs: 300, idleTimeoutMs: 600 });
  barePort = await bare.listen(0, "127.0.0.1");
  app = await startTestApp("rpc_connect_connections");
  await seedSmallCatalog(app, 4);
});

test.after.always(async () => {
  // Each on its own: the app (its database, its Redis keys) is removed whatever the bare server does.
  await Promise.allSettled([bare?.close(), app?.stop()]);
});

/** Connects, optionally sends `bytes`, and resolves with how long the server took to close it (ms). */
async function closedAfter(bytes?: string): Promise<number> {
  const socket = net.connect(barePort, "127.0.0.1");
  socket.on("data", () => {});
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const started = Date.now();
  if (bytes) socket.write(bytes);
  await new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return Date.now() - started;
}

test("a connection that never sends a byte is closed after the first-byte timeout", async (t) => {
  const took = await closedAfter();
  // Not at once. Node starts a timer from its event loop's cached clock, which a busy iteration
  // leaves behind Date.now(), so the close may come a little before the timeout by this clock; the
  // upper bound only tells "closed" from "never closed", on a busy machine.
  t.true(took >= 150 && took < 30_000, `${took} ms`);
});

test("an HTTP/1.1 request whose header never ends is closed once the connection idles", async (t) => {
  const took = await closedAfter("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  t.true(took >= 300 && took < 30_000, `${took} ms`);
});

test("an HTTP/2 session without streams is closed once it idles", async (t) => {
  const session = http2.connect(`http://127.0.0.1:${barePort}`);
  session.on("error", () => {});
  const started = Date.now();
  await new Promise<void>((resolve) => session.once("close", () => resolve()));
  const took = Date.now() - started;
  t.true(took >= 300 && took < 30_000, `${took} ms`);
});

test("an HTTP/1.1 request that arrives a byte at a time is served as HTTP/1.1, though it starts like the HTTP/2 preface", async (t) => {
  t.timeout(15_000); // misrouted to HTTP/2, the request would get no answer at all
  const socket = net.connect(Number(new URL(app.connectUrl).port), "127.0.0.1");
  socket.setNoDelay(true);
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const body = "{}";
  const request = `POST /concert.v1.BookingService/ListConcerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
  for (const byte of request.slice(0, 5)) {
    socket.write(byte);
    await new Promise((r) => setTimeout(r, 20));
  }
  socket.write(request.slice(5)); // not end(): the server would close its side at our FIN
  await new Promise<void>((resolve) => socket.once("close", () => resolve()));
  t.regex(answer, /^HTTP\/1\.1 200 /);
  t.regex(answer, /"concerts"/);
});

test("one HTTP/2 connection outlives 1,500 failed streams, and still serves calls", async (t) => {
  // One client, one HTTP/2 session: every WatchQueue below ends in an error, which the client answers with a stream reset.
  const queue = app.connect(QueueService);
  let refused = 0;
  for (let batch = 0; batch < 15; batch++) {
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        try {
          for await (const _ of queue.watchQueue({ token: "0".repeat(32) })) break;
        } catch (error) {
          if (ConnectError.from(error).code === Code.Unauthenticated) refused++;
          else throw error;
        }
      }),
    );
  }
  t.is(refused, 1500);
  t.true((await app.connect(BookingService).listConcerts({})).concerts.length > 0);
});
