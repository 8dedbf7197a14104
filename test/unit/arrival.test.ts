import test from "ava";
import { formatArrival, parseArrival } from "../../src/loadtest/arrival.js";
import { parseCli, UsageError } from "../../src/loadtest/cli-options.js";

test("--arrival takes closed, burst and ramp:<seconds>, and says so for anything else", (t) => {
  const parse = (...args: string[]) => parseCli(args, {}, "abc123")!.run.arrival;
  t.deepEqual(parse(), { kind: "closed" });
  t.deepEqual(parse("--arrival", "burst"), { kind: "burst" });
  t.deepEqual(parse("--arrival", "ramp:2.5"), { kind: "ramp", rampMs: 2500 });
  for (const bad of ["ramp", "ramp:0", "ramp:-1", "ramp:1s", "bursty"])
    t.throws(() => parse("--arrival", bad), { instanceOf: UsageError, message: /--arrival/ }, bad);
  for (const text of ["closed", "burst", "ramp:10", "ramp:0.5"]) t.is(formatArrival(parseArrival(text)), text);
});

test("--expected-session-seconds sets the started server's prior: given, else $EXPECTED_SESSION_SECONDS, else a script's 2 s", (t) => {
  const parse = (args: string[], env: Record<string, string> = {}) =>
    parseCli(args, env, "abc123")!.expectedSessionSeconds;
  t.is(parse([]), 2);
  t.is(parse([], { EXPECTED_SESSION_SECONDS: "45" }), 45);
  t.is(parse(["--expected-session-seconds", "0"], { EXPECTED_SESSION_SECONDS: "45" }), 0);
  t.throws(() => parse(["--expected-session-seconds", "-1"]), { instanceOf: UsageError });
});

test("--warm-up takes a user count, 0 by default, and needs a seeded demo concert 2 to run on", (t) => {
  const parse = (...args: string[]) => parseCli(args, {}, "abc123")!.warmUpUsers;
  t.is(parse(), 0);
  t.is(parse("--seed", "--warm-up", "2000"), 2000);
  t.is(parse("--start-server", "--fresh-database", "--warm-up", "10"), 10);
  t.is(parse("--warm-up", "0"), 0);
  t.throws(() => parse("--warm-up", "100"), { instanceOf: UsageError, message: /--warm-up needs --seed/ });
  t.throws(() => parse("--seed", "--warm-up", "many"), { instanceOf: UsageError, message: /--warm-up must be/ });
});
