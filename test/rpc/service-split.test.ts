// SERVICES picks what a process serves: the rest is not routed, and health and reflection only
// report what is served.

import { Code } from "@connectrpc/connect";
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";

const run = promisify(execFile);
let app: TestApp;

test.before(async () => {
  app = await startTestApp("split", { services: ["wallet"] });
});

test.after.always(async () => {
  await app?.stop();
});

async function bufCurl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run("buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: 30_000 }).catch(
    (error: { stdout: string; stderr: string }) => ({ stdout: error.stdout, stderr: error.stderr }),
  );
}

test("a wallet-only process serves the wallet and nothing else", async (t) => {
  const { wallet } = await app.grpc(WalletService).getBalance({ userId: "split" });
  t.is(wallet?.userId, "split");
  await expectError(t, app.grpc(BookingService).listConcerts({}), Code.Unimplemented);
  await expectError(t, app.grpc(QueueService).getQueueStatus({ token: "0".repeat(32) }), Code.Unimplemented);
  await expectError(t, app.connect(BookingService).listConcerts({}), Code.Unimplemented);
});

test("reflection and health report only the served services", async (t) => {
  const listed = (await bufCurl("--list-services", `http://${app.grpcAddress}`)).stdout.trim().split("\n").sort();
  t.deepEqual(listed, ["concert.v1.WalletService", "grpc.health.v1.Health"]);
  const serving = JSON.parse(
    (
      await bufCurl(
        "-d",
        '{"service":"concert.v1.WalletService"}',
        `http://${app.grpcAddress}/grpc.health.v1.Health/Check`,
      )
    ).stdout,
  ) as { status: string };
  t.is(serving.status, "SERVING");
  const missing = await bufCurl(
    "-d",
    '{"service":"concert.v1.BookingService"}',
    `http://${app.grpcAddress}/grpc.health.v1.Health/Check`,
  );
  t.regex(missing.stderr + missing.stdout, /not_found/);
});
