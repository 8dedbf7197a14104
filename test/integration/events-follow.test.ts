// `npm run events -- --follow` as a data-platform consumer runs it: it outlives a Redis restart
// and prints what is published afterwards, once.

import test from "ava";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { eventStreamKey, toStreamFields } from "../../src/platform/redis/event-stream.js";
import { startPrivateRedis, type PrivateRedis } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/wait.js";

let redis: PrivateRedis;

test.before(async () => {
  redis = await startPrivateRedis();
});

test.after.always(async () => {
  await redis?.kill().catch(() => undefined);
});

test("events --follow waits out a Redis restart and prints the events published after it", async (t) => {
  t.timeout(60_000);
  const prefix = "events-follow:";
  const key = eventStreamKey(prefix);
  const publish = async (eventType: string) => {
    const client = new Redis(redis.url);
    try {
      const event = {
        eventId: randomUUID(),
        eventType,
        aggregateType: "test",
        aggregateId: randomUUID(),
        occurredAt: new Date().toISOString(),
        payload: {},
      };
      await client.xadd(key, "*", ...toStreamFields(event));
      return event.eventId;
    } finally {
      client.disconnect();
    }
  };
  const before = await publish("test.before");
  const child = spawn(process.execPath, ["--import", "tsx", "src/tools/events.ts", "--follow"], {
    env: { ...process.env, REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  try {
    await waitFor(() => stdout.includes(before), { timeoutMs: 20_000, message: () => stderr });
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await redis.start();
    const after = await publish("test.after");
    await waitFor(() => stdout.includes(after), {
      timeoutMs: 20_000,
      message: () => `stdout:\n${stdout}\nstderr:\n${stderr}`,
    });
    const ids = stdout
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { event_id: string }).event_id);
    t.deepEqual(ids, [before, after]);
    t.regex(stderr, /retrying/);
  } finally {
    child.kill("SIGTERM");
    t.is(await exited, 0);
  }
});
