import { Code, ConnectError } from "@connectrpc/connect";
import test from "ava";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createRetryBudget } from "../../src/loadtest/retry-budget.js";
import { serverRetryDelayMs } from "../../src/loadtest/rpc-call.js";

test("the retry budget lets retries through while it lasts, then paces them by its floor and the calls made", async (t) => {
  let nowMs = 0;
  const slept: number[] = [];
  const budget = createRetryBudget({
    ratio: 0.5,
    floorPerSecond: 10,
    max: 2,
    now: () => nowMs,
    // A stepped clock: sleeping moves it.
    sleep: async (ms) => {
      slept.push(ms);
      nowMs += ms;
    },
  });
  const signal = new AbortController().signal;
  await budget.withdraw(signal);
  await budget.withdraw(signal);
  t.deepEqual(slept, [], "the saved-up retries go at once");
  t.is(budget.delayed, 0);
  // Empty: the next retry waits until the floor has refilled one (0.1 s at 10 a second, jittered).
  await budget.withdraw(signal);
  t.is(budget.delayed, 1);
  t.true(slept.length > 0 && nowMs >= 100 && nowMs <= 200, `waited ${nowMs} ms`);
  // Calls made refill it too: two first attempts at half a retry each pay for one.
  const before = slept.length;
  budget.deposit();
  budget.deposit();
  await budget.withdraw(signal);
  t.is(slept.length, before);
});

test("a retry waiting for the budget gives up waiting when the run ends", async (t) => {
  const controller = new AbortController();
  const budget = createRetryBudget({
    ratio: 0,
    floorPerSecond: 0.001,
    max: 0,
    sleep: (ms, signal) =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      }),
  });
  const waiting = budget.withdraw(controller.signal);
  controller.abort();
  await waiting;
  t.is(budget.delayed, 1);
});

test("the delay a server asks for in RetryInfo is honoured, with up to a quarter more of jitter", (t) => {
  const refused = new ConnectError("overloaded", Code.ResourceExhausted, undefined, [
    { desc: RetryInfoSchema, value: { retryDelay: { seconds: 2n, nanos: 500_000_000 } } },
  ]);
  for (let i = 0; i < 20; i++) {
    const ms = serverRetryDelayMs(refused)!;
    t.true(ms >= 2500 && ms <= 3125, String(ms));
  }
  t.is(serverRetryDelayMs(new ConnectError("down", Code.Unavailable)), undefined);
});
