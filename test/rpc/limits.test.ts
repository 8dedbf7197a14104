// Request size and deadline limits on both ports.

import { Code } from "@connectrpc/connect";
import test from "ava";
import pg from "pg";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";

let app: TestApp;

test.before(async () => {
  app = await startTestApp("limits", { maxRequestBytes: 4096, defaultDeadlineMs: 500 });
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

test("a call without a deadline gets DEFAULT_DEADLINE_MS and answers DEADLINE_EXCEEDED on time", async (t) => {
  const client = app.grpc(WalletService);
  await client.topUp({ userId: "slow", amount: { amountMinor: 1n }, idempotencyKey: "s0" });
  const blocker = new pg.Client({ connectionString: app.config.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query("begin");
    await blocker.query("select * from wallet where user_id = 'slow' for update");
    const started = Date.now();
    await expectError(t, client.topUp({ userId: "slow", amount: { amountMinor: 1n }, idempotencyKey: "s1" }), Code.DeadlineExceeded);
    const elapsed = Date.now() - started;
    t.true(elapsed >= 400 && elapsed < 3000, `answered after ${elapsed} ms`);
  } finally {
    await blocker.query("rollback");
    await blocker.end();
  }
});
