// A slow Redis is not a dead one. A private redis-server is paused (CLIENT PAUSE) and the waiting
// room's store mode is fed the command timeouts a starved process sees (a client of the test's
// with a short command timeout, run through the mode as every Redis call is): those fail the call
// (retryable) and never move the mode, nor does a pause shorter than the 5 s window in which the
// mode's own checks time out; checks silent past the window (the server stopped), or a killed
// server, move it to PostgreSQL.

import test from "ava";
import { Redis } from "ioredis";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { QueueService } from "../../gen/concert/v1/queue_pb.js";
import { startTestAppOnPrivateRedis, type TestApp } from "../helpers/app.js";
import type { PrivateRedis } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/wait.js";

let redis: PrivateRedis;
let app: TestApp;
let stack: Awaited<ReturnType<typeof startTestAppOnPrivateRedis>> | undefined;

test.before(async () => {
  // Admission ticks every 100 ms, so its own Redis checks time out during the pause too.
  stack = await startTestAppOnPrivateRedis("queue_slow_redis", {
    admissionIntervalMs: 100,
    activeTokenTtlSeconds: 600,
    waitingTokenTtlSeconds: 600,
  });
  ({ app, redis } = stack);
});

test.after.always(async () => {
  await stack?.stop();
});

/** A Redis call through the store mode, as the waiting room makes them: "redis" or "postgres", or the call's error code. */
function callThroughMode(mode: TestApp["app"]["waitingRoom"]["mode"], client: Redis): Promise<string> {
  return mode
    .run(
      async () => {
        await client.get("any");
        return "redis";
      },
      async () => "postgres",
    )
    .catch((error: unknown) => (error as Error).name);
}

/** Calls through the mode every 250 ms while `pauseMs` of pause last; their answers. */
async function callsDuringPause(
  mode: TestApp["app"]["waitingRoom"]["mode"],
  pauseMs: number,
  calls: number,
): Promise<string[]> {
  const control = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  // The timeouts a starved event loop would see: far shorter than the pause.
  const starved = new Redis(redis.url, {
    maxRetriesPerRequest: 0,
    commandTimeout: 300,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  try {
    await starved.connect();
    await control.call("CLIENT", "PAUSE", String(pauseMs), "ALL");
    const answers = [];
    for (let i = 0; i < calls; i++) {
      answers.push(await callThroughMode(mode, starved));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return answers;
  } finally {
    control.disconnect();
    starved.disconnect();
  }
}

test.serial("Redis paused for less than the window: calls time out (retryable), the mode stays on Redis", async (t) => {
  const mode = app.app.waitingRoom.mode;
  const queue = app.grpc(QueueService);
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  await queue.joinQueue({ concertId, userId: "before" });
  // Ten timeouts over 2.5 s of a 3 s pause.
  const states = new Set<string>();
  const sampling = setInterval(() => states.add(mode.state), 50);
  const answers = await callsDuringPause(mode, 3000, 10).finally(() => clearInterval(sampling));
  t.true(answers.filter((a) => a === "UnavailableError").length >= 3, answers.join(","));
  t.false(answers.includes("postgres"), answers.join(","));
  t.deepEqual([...states], ["redis"], "never left Redis");
  await waitFor(async () => (await callThroughMode(mode, app.app.redis as Redis)) === "redis", {
    timeoutMs: 30_000,
    message: () => "Redis answers after the pause",
  });
  t.truthy((await queue.joinQueue({ concertId, userId: "after" })).token);
  t.is(mode.state, "redis");
});

test.serial("Redis silent past the window moves the mode to PostgreSQL, and back once it answers", async (t) => {
  t.timeout(150_000);
  const mode = app.app.waitingRoom.mode;
  // A stopped server answers nothing for as long as the checks (each timing out after 2 s) need to
  // pass the 5 s window on a busy machine; a CLIENT PAUSE would have to guess that time up front.
  redis.freeze();
  try {
    await waitFor(() => mode.state === "postgres", { timeoutMs: 60_000, message: () => `mode ${mode.state}` });
    t.is(await callThroughMode(mode, app.app.redis as Redis), "postgres");
  } finally {
    redis.thaw();
  }
  await waitFor(() => mode.state === "redis", { timeoutMs: 60_000, message: () => `mode ${mode.state}` });
});

test.serial("a killed Redis moves the mode to PostgreSQL at once; joins go on", async (t) => {
  t.timeout(90_000);
  const mode = app.app.waitingRoom.mode;
  const queue = app.grpc(QueueService);
  const concertId = (await app.grpc(BookingService).listConcerts({})).concerts[0]!.id;
  await redis.kill();
  // The next call (or admission tick) meets a closed connection: evidence enough.
  await queue.joinQueue({ concertId, userId: "outage" }, { deadlineMs: 30_000 }).catch(() => undefined);
  await waitFor(() => mode.state === "postgres", { timeoutMs: 30_000, message: () => `mode ${mode.state}` });
  t.truthy((await queue.joinQueue({ concertId, userId: "on-postgres" }, { deadlineMs: 30_000 })).token);
});
