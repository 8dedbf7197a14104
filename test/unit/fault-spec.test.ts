// `loadtest --fault`: the spec syntax, its defaults, and the combinations the CLI refuses.

import test from "ava";
import { setTimeout as delay } from "node:timers/promises";
import { parseCli, UsageError } from "../../src/loadtest/cli-options.js";
import { formatFaultSpec, parseFaultSpec, scheduleFaults, type Fault } from "../../src/loadtest/faults.js";
import { createRunStats } from "../../src/loadtest/run-stats.js";

test("KIND[@AT[:FOR]] with defaults; worker-kill takes no duration", (t) => {
  t.deepEqual(parseFaultSpec("redis-outage"), { kind: "redis-outage", atMs: 5000, durationMs: 10_000 });
  t.deepEqual(parseFaultSpec("postgres-outage@1.5s"), { kind: "postgres-outage", atMs: 1500, durationMs: 2000 });
  t.deepEqual(parseFaultSpec("redis-outage@500ms:3s"), { kind: "redis-outage", atMs: 500, durationMs: 3000 });
  t.deepEqual(parseFaultSpec("worker-kill@20s"), { kind: "worker-kill", atMs: 20_000, durationMs: 0 });
  t.is(formatFaultSpec(parseFaultSpec("redis-outage@15s:10s")), "redis-outage@15s:10s");
  for (const bad of ["redis", "redis-outage@5", "redis-outage@5s:0s", "worker-kill@5s:2s", "postgres-outage@-1s"])
    t.throws(() => parseFaultSpec(bad), undefined, bad);
});

test("faults need --start-server; worker-kill needs workers; redis-outage brings its own Redis", (t) => {
  const parse = (...args: string[]) => parseCli(args, {}, "abc123");
  t.is(parse("--start-server", "--fault", "redis-outage", "--fault", "postgres-outage@1s:1s")?.faults.length, 2);
  t.throws(() => parse("--fault", "redis-outage"), { instanceOf: UsageError, message: /needs --start-server/ });
  t.throws(() => parse("--start-server", "--fault", "worker-kill"), { instanceOf: UsageError, message: /--workers 2/ });
  t.notThrows(() => parse("--start-server", "--workers", "2", "--fault", "worker-kill"));
  t.throws(() => parse("--start-server", "--redis-url", "redis://127.0.0.1:6379", "--fault", "redis-outage"), {
    instanceOf: UsageError,
    message: /drop --redis-url/,
  });
  t.throws(() => parse("--start-server", "--fault", "disk-full"), { instanceOf: UsageError });
});

test("two faults of one kind must not overlap; --timeout must fit a timer", (t) => {
  const parse = (...args: string[]) => parseCli(args, {}, "abc123");
  t.throws(() => parse("--start-server", "--fault", "redis-outage@1s:3s", "--fault", "redis-outage@2s:3s"), {
    instanceOf: UsageError,
    message: /must not overlap/,
  });
  t.is(parse("--start-server", "--fault", "redis-outage@1s:3s", "--fault", "redis-outage@5s:1s")?.faults.length, 2);
  t.is(
    parse("--start-server", "--fault", "redis-outage@1s:3s", "--fault", "postgres-outage@2s:3s")?.faults.length,
    2,
    "different kinds may overlap",
  );
  t.is(
    parse("--start-server", "--workers", "3", "--fault", "worker-kill@5s", "--fault", "worker-kill@5s")?.faults.length,
    2,
    "kills take no time",
  );
  t.throws(() => parse("--timeout", "5000000"), {
    instanceOf: UsageError,
    message: /--timeout must be an integer from 1 to 2147483/,
  });
  t.is(parse("--timeout", "2147483")?.run.timeoutMs, 2_147_483_000);
});

test("postgres-outage waits for a user admitted and not yet topped up: one in its last call may make no further call", async (t) => {
  const { counts } = createRunStats();
  // One user active but past TopUp (its payment's answer may already be on its way back).
  Object.assign(counts, { joined: 2, waiting: 1, active: 1, activated: 1, toppedUp: 1 });
  let injectedWith: { activated: number; toppedUp: number } | undefined;
  const fault: Fault = {
    spec: parseFaultSpec("postgres-outage@0s:1ms"),
    inject: async () => {
      injectedWith = { activated: counts.activated, toppedUp: counts.toppedUp };
      return "cut";
    },
    recover: async () => "restored",
  };
  const schedule = scheduleFaults([fault], counts, 2);
  // Absence only: a busy machine can delay the injection, never bring it forward.
  await delay(300);
  t.is(injectedWith, undefined);
  Object.assign(counts, { waiting: 0, active: 2, activated: 2 });
  while (!injectedWith) await delay(20);
  t.deepEqual(injectedWith, { activated: 2, toppedUp: 1 });
  const [record] = await schedule.finish();
  t.true(record!.complete);
});
