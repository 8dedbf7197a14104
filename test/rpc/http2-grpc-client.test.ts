// The load generator's node:http2 gRPC client against a grpc-js server on port 0 that serves
// connect-style handlers through the server's own adapter: answers, errors with their details,
// deadlines, cancellation, server streams, and a connection that drops or was never there.

import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState } from "../../gen/concert/v1/queue_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createHttp2Channel } from "../../src/loadtest/http2-grpc-client.js";
import { errorReason, serverRetryDelayMs } from "../../src/loadtest/rpc-call.js";
import { freePort } from "../../src/loadtest/free-port.js";
import { startTcpProxy } from "../../src/loadtest/tcp-proxy.js";
import { addServiceToGrpcServer } from "../../src/platform/rpc/grpc-adapter.js";

/** ListConcerts answers by page token: "ok", "busy" (refused with details), "slow" (until cancelled). */
const booking = {
  async listConcerts(request: { pageToken: string; pageSize: number }, context: HandlerContext) {
    if (request.pageToken === "busy")
      throw new ConnectError("try later", Code.ResourceExhausted, undefined, [
        { desc: ErrorInfoSchema, value: { reason: "OVERLOADED", domain: "test" } },
        { desc: RetryInfoSchema, value: { retryDelay: { seconds: 2n, nanos: 0 } } },
      ]);
    if (request.pageToken === "slow")
      await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
    const token = context.requestHeader.get("x-queue-token") ?? "";
    // A large page, so that the response spans many DATA frames.
    const title = "t".repeat(request.pageSize);
    return { concerts: [{ id: token, title }], nextPageToken: "" };
  },
} as unknown as ServiceImpl<typeof BookingService>;

/** WatchQueue sends WAITING for each of the token's first N characters, then ACTIVE; "fail" ends with an error. */
const queue = {
  async *watchQueue(request: { token: string }) {
    for (let i = 0; i < 3; i++)
      yield { status: { token: request.token, state: QueueState.WAITING, position: BigInt(3 - i) } };
    if (request.token === "fail") throw new ConnectError("token expired", Code.NotFound);
    yield { status: { token: request.token, state: QueueState.ACTIVE } };
  },
} as unknown as ServiceImpl<typeof QueueService>;

async function startServer() {
  const server = new grpc.Server();
  addServiceToGrpcServer(server, BookingService, booking, { defaultDeadlineMs: 30_000 });
  addServiceToGrpcServer(server, QueueService, queue, { defaultDeadlineMs: 30_000 });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return { port, stop: () => server.forceShutdown() };
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof ConnectError)) throw new Error(`expected a ConnectError, got ${String(error)}`);
  return error;
}

test("unary calls: the answer, metadata sent, a message of many frames, errors with their details", async (t) => {
  const server = await startServer();
  const channel = createHttp2Channel(`127.0.0.1:${server.port}`);
  t.teardown(() => (channel.close(), server.stop()));
  const client = channel.client(BookingService);

  const page = await client.listConcerts(
    { pageSize: 200_000 },
    { metadata: { "x-queue-token": "tk" }, deadlineMs: 5000 },
  );
  t.is(page.concerts[0]?.id, "tk");
  t.is(page.concerts[0]?.title.length, 200_000);

  const refused = await failure(client.listConcerts({ pageToken: "busy" }));
  t.is(refused.code, Code.ResourceExhausted);
  t.is(refused.rawMessage, "try later");
  t.is(errorReason(refused), "OVERLOADED");
  t.true((serverRetryDelayMs(refused) ?? 0) >= 2000);

  const small = createHttp2Channel(`127.0.0.1:${server.port}`, { maxReceiveBytes: 1000 });
  t.teardown(() => small.close());
  t.is((await failure(small.client(BookingService).listConcerts({ pageSize: 5000 }))).code, Code.ResourceExhausted);
});

test("a call past its deadline is DEADLINE_EXCEEDED, an aborted one CANCELED; the connection serves on", async (t) => {
  const server = await startServer();
  const channel = createHttp2Channel(`127.0.0.1:${server.port}`);
  t.teardown(() => (channel.close(), server.stop()));
  const client = channel.client(BookingService);

  t.is((await failure(client.listConcerts({ pageToken: "slow" }, { deadlineMs: 200 }))).code, Code.DeadlineExceeded);
  const abort = new AbortController();
  const call = client.listConcerts({ pageToken: "slow" }, { signal: abort.signal });
  setTimeout(() => abort.abort(), 100);
  t.is((await failure(call)).code, Code.Canceled);
  t.is((await client.listConcerts({ pageSize: 1 })).concerts.length, 1);
});

test("server streams: every message in order, then the end or the error status", async (t) => {
  const server = await startServer();
  const channel = createHttp2Channel(`127.0.0.1:${server.port}`);
  t.teardown(() => (channel.close(), server.stop()));
  const client = channel.client(QueueService);

  const states: QueueState[] = [];
  for await (const message of client.watchQueue({ token: "ok" })) states.push(message.status!.state);
  t.deepEqual(states, [QueueState.WAITING, QueueState.WAITING, QueueState.WAITING, QueueState.ACTIVE]);

  let seen = 0;
  const error = await failure(
    (async () => {
      for await (const _ of client.watchQueue({ token: "fail" })) seen++;
    })(),
  );
  t.is(seen, 3);
  t.is(error.code, Code.NotFound);
  t.is(error.rawMessage, "token expired");

  // Leaving early cancels the stream; the connection takes the next call.
  for await (const _ of client.watchQueue({ token: "ok" })) break;
  t.is((await channel.client(BookingService).listConcerts({ pageSize: 1 })).concerts.length, 1);
});

test("no server, or the connection cut mid-call: UNAVAILABLE, and the next call reconnects", async (t) => {
  const server = await startServer();
  const proxy = await startTcpProxy(server.port);
  const channel = createHttp2Channel(`127.0.0.1:${proxy.port}`);
  t.teardown(async () => (channel.close(), server.stop(), await proxy.close()));
  const client = channel.client(BookingService);

  t.is((await client.listConcerts({ pageSize: 1 })).concerts.length, 1);
  const call = client.listConcerts({ pageToken: "slow" }, { deadlineMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  proxy.cut();
  t.is((await failure(call)).code, Code.Unavailable);
  t.is((await failure(client.listConcerts({ pageSize: 1 }))).code, Code.Unavailable);
  proxy.restore();
  t.is((await client.listConcerts({ pageSize: 1 })).concerts.length, 1);

  const nowhere = createHttp2Channel(`127.0.0.1:${await freePort()}`);
  t.teardown(() => nowhere.close());
  t.is((await failure(nowhere.client(QueueService).leaveQueue({ token: "x" }))).code, Code.Unavailable);
});
