// The Connect port's own edges: a connection reset before its first byte, client deadlines on
// unary calls and on streams (connect-node answers whenever the handler returns, so the server
// has to enforce them), long client timeouts, and client cancels that are nobody's bug.

import { Code, ConnectError } from "@connectrpc/connect";
import test from "ava";
import net from "node:net";
import pg from "pg";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";

let app: TestApp;
let concertId: string;

test.before(async () => {
  // Nobody is admitted: every WatchQueue stays WAITING.
  app = await startTestApp("rpc_connect_port", {
    maxActiveUsers: 1,
    admissionIntervalMs: 100,
    defaultDeadlineMs: 2000,
  });
  await seedSmallCatalog(app, 4);
  concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  await app.grpc(QueueService).joinQueue({ concertId, userId: "holder" });
});

test.after.always(async () => {
  await app?.stop();
});

test.serial("a connection reset before its first byte leaves the server up", async (t) => {
  const port = Number(new URL(app.connectUrl).port);
  for (let i = 0; i < 3; i++) {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.resetAndDestroy();
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.true((await app.connect(BookingService).listConcerts({})).concerts.length > 0);
});

test.serial("a unary call held past the client's timeout answers DEADLINE_EXCEEDED when it passes", async (t) => {
  const wallet = app.connect(WalletService);
  await wallet.topUp({ userId: "locked", amount: { amountMinor: 100n }, idempotencyKey: "first" });
  const blocker = new pg.Client({ connectionString: app.config.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query("begin");
    await blocker.query("select * from wallet where user_id = 'locked' for update");
    const started = Date.now();
    await expectError(
      t,
      wallet.topUp({ userId: "locked", amount: { amountMinor: 100n }, idempotencyKey: "second" }, { timeoutMs: 500 }),
      Code.DeadlineExceeded,
    );
    // The lock is held until the test ends: any answer within seconds is the deadline's.
    const took = Date.now() - started;
    t.true(took < 30_000, `answered after ${took} ms`);
  } finally {
    await blocker.query("rollback");
    await blocker.end();
  }
});

test.serial("WatchQueue ends with DEADLINE_EXCEEDED at the client's timeout, not as if done", async (t) => {
  const queue = app.connect(QueueService);
  const { token } = await queue.joinQueue({ concertId, userId: "watcher" });
  const states: QueueState[] = [];
  const error = await t.throwsAsync(async () => {
    for await (const update of queue.watchQueue({ token }, { timeoutMs: 700 })) states.push(update.status!.state);
  });
  t.is(ConnectError.from(error).code, Code.DeadlineExceeded);
  t.true(states.every((state) => state === QueueState.WAITING));
});

test.serial("a client timeout far above DEFAULT_DEADLINE_MS is accepted", async (t) => {
  const queue = app.connect(QueueService);
  const { token } = await queue.joinQueue({ concertId, userId: "patient" });
  const status = await queue.getQueueStatus({ token }, { timeoutMs: 600_000 });
  t.is(status.status!.state, QueueState.WAITING);
});

test.serial("a client timeout beyond what a timer holds is refused clearly on the Connect port", async (t) => {
  // Raw HTTP: connect's own client would overflow its timer on the way out.
  const response = await fetch(`${app.connectUrl}/concert.v1.BookingService/ListConcerts`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "connect-protocol-version": "1",
      "connect-timeout-ms": "9999999999",
    },
    body: "{}",
  });
  t.is(response.status, 400);
  t.is(((await response.json()) as { code: string }).code, "invalid_argument");
});

test.serial("a client cancelling WatchQueue is counted as cancelled, not as an internal error", async (t) => {
  const queue = app.connect(QueueService);
  const { token } = await queue.joinQueue({ concertId, userId: "leaver" });
  const internal = async () => {
    const text = await (await fetch(`${app.connectUrl}/metrics`)).text();
    return text
      .split("\n")
      .filter((line) => line.includes("WatchQueue") && line.includes('code="Internal"') && /_count\{/.test(line))
      .length;
  };
  const before = await internal();
  for (let i = 0; i < 5; i++) {
    const controller = new AbortController();
    for await (const _ of queue.watchQueue({ token }, { signal: controller.signal })) {
      controller.abort();
      break;
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(await internal(), before);
});
