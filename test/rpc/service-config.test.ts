// docs/grpc-service-config.json, the client policy we hand to backend-for-frontend teams, loaded
// by a real grpc-js client: it names only methods that exist, grpc-js accepts it, a transient
// UNAVAILABLE is retried to success, and the retry budget (retryThrottling) stops retries when
// most calls fail, so clients do not multiply an overload.

import { create, toBinary, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { readFileSync } from "node:fs";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { GetBalanceResponseSchema, WalletService } from "../../gen/concert/v1/wallet_pb.js";
import { createGrpcClient } from "../../src/platform/rpc/grpc-client.js";
import { startTestApp } from "../helpers/app.js";

interface MethodName {
  service: string;
  method?: string;
}
const configText = readFileSync(new URL("../../docs/grpc-service-config.json", import.meta.url), "utf8");
const config = JSON.parse(configText) as { methodConfig: { name: MethodName[] }[] };
const USER_SERVICES: readonly DescService[] = [QueueService, BookingService, WalletService];

test("every name in the service config is a service or method of the API", (t) => {
  const names = config.methodConfig.flatMap((entry) => entry.name);
  t.true(names.length > 0);
  for (const name of names) {
    const service = USER_SERVICES.find((s) => s.typeName === name.service);
    t.truthy(service, `unknown service ${name.service}`);
    if (name.method !== undefined) {
      t.truthy(
        service?.methods.find((m) => m.name === name.method),
        `unknown method ${name.service}/${name.method}`,
      );
    }
  }
  t.deepEqual(
    new Set(names.filter((n) => n.method === undefined).map((n) => n.service)),
    new Set(USER_SERVICES.map((s) => s.typeName)),
    "every user-facing service has a default policy",
  );
});

test("a grpc-js client that loads the config calls the real server", async (t) => {
  const app = await startTestApp("rpc_service_config");
  t.teardown(() => app.stop());
  const wallet = createGrpcClient(WalletService, app.grpcAddress, { "grpc.service_config": configText });
  t.teardown(() => wallet.close());
  const balance = await wallet.getBalance({ userId: "service-config-user" });
  t.is(balance.wallet?.userId, "service-config-user");
});

/** A GetBalance server that answers UNAVAILABLE while `failing(attempt)` says so, counting attempts. */
async function flakyWalletServer(failing: (attempt: number) => boolean) {
  const server = new grpc.Server();
  let attempts = 0;
  const answer = Buffer.from(
    toBinary(GetBalanceResponseSchema, create(GetBalanceResponseSchema, { wallet: { userId: "u" } })),
  );
  server.addService(
    {
      getBalance: {
        path: "/concert.v1.WalletService/GetBalance",
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: (value: Buffer) => value,
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    },
    {
      getBalance: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => {
        attempts++;
        if (failing(attempts)) callback({ code: grpc.status.UNAVAILABLE, details: "try again" });
        else callback(null, answer);
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return { address: `127.0.0.1:${port}`, attempts: () => attempts, stop: () => server.forceShutdown() };
}

test("a transient UNAVAILABLE is retried with backoff until it succeeds", async (t) => {
  const server = await flakyWalletServer((attempt) => attempt <= 2);
  t.teardown(() => server.stop());
  const wallet = createGrpcClient(WalletService, server.address, { "grpc.service_config": configText });
  t.teardown(() => wallet.close());
  const balance = await wallet.getBalance({ userId: "u" });
  t.is(balance.wallet?.userId, "u");
  t.is(server.attempts(), 3, "two failures, then the answer");
});

test("the retry budget stops retrying when most calls fail", async (t) => {
  const server = await flakyWalletServer(() => true);
  t.teardown(() => server.stop());
  const wallet = createGrpcClient(WalletService, server.address, { "grpc.service_config": configText });
  t.teardown(() => wallet.close());
  const calls = 20;
  for (let i = 0; i < calls; i++) await t.throwsAsync(wallet.getBalance({ userId: "u" }));
  // Without a budget every call would make maxAttempts (4) attempts: 80. With maxTokens 10 and
  // each failure costing one token, retries stop once the bucket is half empty.
  t.true(server.attempts() < calls * 2, `${server.attempts()} attempts for ${calls} calls`);
  t.true(server.attempts() > calls, "some calls were retried before the budget ran out");
});
