import { Code, ConnectError } from "@connectrpc/connect";
import test from "ava";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService, QueueState, type WatchQueueResponse } from "../../gen/concert/v1/queue_pb.js";
import { startTestApp, seedSmallCatalog, type TestApp } from "../helpers/app.js";
import { admitUser } from "../helpers/queue.js";
import { waitFor } from "../helpers/wait.js";

let app: TestApp;
let concertId: string;

test.before(async () => {
  // Two slots that free every second: the line moves by two per second.
  app = await startTestApp("queue_watch", {
    maxActiveUsers: 2,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 1,
    waitingTokenTtlSeconds: 60,
  });
  await seedSmallCatalog(app, 4);
  concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
});

test.after.always(async () => {
  await app?.stop();
});

async function openStreams(): Promise<number> {
  const text = await (await fetch(`${app.connectUrl}/metrics`)).text();
  return Number(/^queue_watch_streams (\d+)/m.exec(text)?.[1] ?? NaN);
}

function checkProgress(t: import("ava").ExecutionContext, messages: WatchQueueResponse[]): void {
  t.true(messages.length >= 2, `${messages.length} messages`);
  const waiting = messages
    .filter((m) => m.status!.state === QueueState.WAITING && !m.heartbeat)
    .map((m) => m.status!.position);
  for (let i = 1; i < waiting.length; i++)
    t.true(waiting[i]! < waiting[i - 1]!, `positions decrease: ${waiting.join(",")}`);
  t.is(messages.at(-1)!.status!.state, QueueState.ACTIVE, "the stream ends right after ACTIVE");
  t.truthy(messages.at(-1)!.status!.activeExpireTime);
  t.true(messages.slice(0, -1).every((m) => m.status!.state === QueueState.WAITING));
}

test.serial("WatchQueue streams decreasing positions and ends at ACTIVE, on grpc-js and on Connect", async (t) => {
  const queue = app.grpc(QueueService);
  const joined = [];
  for (let i = 0; i < 10; i++) joined.push(await queue.joinQueue({ concertId, userId: `watch-${i}` }));
  const grpcMessages: WatchQueueResponse[] = [];
  const connectMessages: WatchQueueResponse[] = [];
  await Promise.all([
    (async () => {
      for await (const m of queue.watchQueue({ token: joined[9]!.token })) grpcMessages.push(m);
    })(),
    (async () => {
      for await (const m of app.connect(QueueService).watchQueue({ token: joined[8]!.token })) connectMessages.push(m);
    })(),
  ]);
  checkProgress(t, grpcMessages);
  checkProgress(t, connectMessages);
  t.true(grpcMessages[0]!.status!.position > 1n);
  await waitFor(async () => (await openStreams()) === 0, { message: () => "watchers released" });
});

test.serial("WatchQueue of an ACTIVE token sends ACTIVE once and ends; a cancelled stream is released", async (t) => {
  const token = await admitUser(app, concertId, "already-in");
  const messages: WatchQueueResponse[] = [];
  for await (const m of app.grpc(QueueService).watchQueue({ token })) messages.push(m);
  t.is(messages.length, 1);
  t.is(messages[0]!.status!.state, QueueState.ACTIVE);

  // Keep a user waiting behind a full room, then cancel from the client side.
  const queue = app.grpc(QueueService);
  for (let i = 0; i < 6; i++) await queue.joinQueue({ concertId, userId: `cancel-filler-${i}` });
  const { token: waiting } = await queue.joinQueue({ concertId, userId: "canceller" });
  const abort = new AbortController();
  const received: WatchQueueResponse[] = [];
  const watching = (async () => {
    for await (const m of app.connect(QueueService).watchQueue({ token: waiting }, { signal: abort.signal })) {
      received.push(m);
      abort.abort();
    }
  })();
  const error = await t.throwsAsync(watching);
  t.is(ConnectError.from(error).code, Code.Canceled);
  t.is(received.length, 1);
  await waitFor(async () => (await openStreams()) === 0, { message: () => "cancelled watcher released" });
});

test.serial("a waiting watcher gets heartbeats; server shutdown ends the stream with UNAVAILABLE", async (t) => {
  const own = await startTestApp("queue_watch_stop", {
    maxActiveUsers: 1,
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 60,
  });
  try {
    await seedSmallCatalog(own, 4);
    const concert = (await own.grpc(BookingService).listConcerts({})).concerts[0]!.id;
    await admitUser(own, concert, "holder");
    const { token } = await own.grpc(QueueService).joinQueue({ concertId: concert, userId: "stuck" });
    const messages: WatchQueueResponse[] = [];
    const watching = (async () => {
      for await (const m of own.grpc(QueueService).watchQueue({ token })) messages.push(m);
    })();
    await waitFor(() => messages.some((m) => m.heartbeat), {
      timeoutMs: 15_000,
      message: () => "a heartbeat within 5 s",
    });
    const beat = messages.find((m) => m.heartbeat)!;
    t.is(beat.status!.position, 1n);
    t.is(beat.status!.state, QueueState.WAITING);
    const stopping = own.app.stop();
    const error = await t.throwsAsync(watching);
    t.is(ConnectError.from(error).code, Code.Unavailable);
    await stopping;
  } finally {
    await own.stop();
  }
});
