// Request size and deadline limits on both ports.

import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import pg from "pg";
import { grpcErrorToConnect } from "../../src/platform/rpc/grpc-client.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";

/** Seconds, so that the other calls of this file, which should succeed, do so on a busy machine too. */
const DEFAULT_DEADLINE_MS = 2000;

let app: TestApp;

test.before(async () => {
  app = await startTestApp("limits", { maxRequestBytes: 4096, defaultDeadlineMs: DEFAULT_DEADLINE_MS });
});

test.after.always(async () => {
  await app?.stop();
});

const oversized = { userId: "big", amount: { amountMinor: 1n }, idempotencyKey: "k".repeat(10_000) };

test("a request above MAX_REQUEST_BYTES is RESOURCE_EXHAUSTED on the gRPC port", async (t) => {
  await expectError(t, app.grpc(WalletService).topUp(oversized), Code.ResourceExhausted);
});

test("a request above MAX_REQUEST_BYTES is RESOURCE_EXHAUSTED on the Connect port", async (t) => {
  await expectError(t, app.connect(WalletService).topUp(oversized), Code.ResourceExhausted);
});

test("request bytes that are not a valid message are INVALID_ARGUMENT / INVALID_FIELD on the gRPC port, not INTERNAL", async (t) => {
  const client = new grpc.Client(app.grpcAddress, grpc.credentials.createInsecure());
  const raw = (path: string, bytes: Buffer) =>
    new Promise<unknown>((resolve, reject) =>
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        (error, value) => (error ? reject(grpcErrorToConnect(error)) : resolve(value)),
      ),
    );
  const stream = (path: string, bytes: Buffer) =>
    new Promise<unknown>((resolve, reject) => {
      const call = client.makeServerStreamRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
      );
      call.on("data", () => {});
      call.on("error", (error: grpc.ServiceError) => reject(grpcErrorToConnect(error)));
      call.on("end", resolve);
    });
  try {
    // A length-delimited field whose length runs past the end; a varint cut short.
    for (const bytes of [Buffer.from([0x0a, 0x01]), Buffer.from([0x08, 0xff])]) {
      await expectError(t, raw("/concert.v1.WalletService/GetBalance", bytes), Code.InvalidArgument, "INVALID_FIELD");
      await expectError(t, stream("/concert.v1.QueueService/WatchQueue", bytes), Code.InvalidArgument, "INVALID_FIELD");
    }
  } finally {
    client.close();
  }
});

test("a call without a deadline gets DEFAULT_DEADLINE_MS and answers DEADLINE_EXCEEDED on time", async (t) => {
  const client = app.grpc(WalletService);
  // A deadline of its own: this call must succeed, however busy the machine.
  await client.topUp({ userId: "slow", amount: { amountMinor: 1n }, idempotencyKey: "s0" }, { deadlineMs: 60_000 });
  const blocker = new pg.Client({ connectionString: app.config.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query("begin");
    await blocker.query("select * from wallet where user_id = 'slow' for update");
    const started = Date.now();
    await expectError(
      t,
      client.topUp({ userId: "slow", amount: { amountMinor: 1n }, idempotencyKey: "s1" }),
      Code.DeadlineExceeded,
    );
    const elapsed = Date.now() - started;
    // The wallet stays locked until the test rolls back: an answer within seconds is the deadline's.
    t.true(elapsed >= DEFAULT_DEADLINE_MS - 100 && elapsed < 30_000, `answered after ${elapsed} ms`);
  } finally {
    await blocker.query("rollback");
    await blocker.end();
  }
});
