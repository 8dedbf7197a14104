import { Code, ConnectError } from "@connectrpc/connect";
import test from "ava";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { createRetryBudget } from "../../src/loadtest/retry-budget.js";
import { serverRetryDelayMs } from "../../src/loadtest/rpc-call.js";

/** A budget on a stepped clock: sleeping moves it. */
function steppedBudget() {
  const clock = { nowMs: 0, slept: 0 };
  const budget = createRetryBudget({
    ratio: 0.2,
    floorPerSecond: 1,
    windowMs: 10_000,
    now: () => clock.nowMs,
    sleep: async (ms) => {
      clock.slept += ms;
      clock.nowMs += ms;
    },
  });
  return { clock, budget };
}

test("retries may be a fifth of the calls of the window plus the floor; beyond, they wait", async (t) => {
  const { clock, budget } = steppedBudget();
  const signal = new AbortController().signal;
  // 100 calls and the floor (1 a second over 10 s) pay for 30 retries at once.
  for (let i = 0; i < 100; i++) budget.deposit();
  for (let i = 0; i < 30; i++) await budget.withdraw(signal);
  t.is(clock.slept, 0);
  t.is(budget.delayed, 0);
  // The 31st waits until the window has moved past the calls' slice and the retries' own.
  await budget.withdraw(signal);
  t.is(budget.delayed, 1);
  t.true(clock.nowMs >= 10_000, `waited only ${clock.nowMs} ms`);
});

test("the budget follows the crowd: more calls, more retries at once", async (t) => {
  const { clock, budget } = steppedBudget();
  const signal = new AbortController().signal;
  for (let i = 0; i < 10_000; i++) budget.deposit();
  for (let i = 0; i < 2000; i++) await budget.withdraw(signal);
  t.is(clock.slept, 0);
});

test("a retry waiting for the budget gives up waiting when the run ends", async (t) => {
  const controller = new AbortController();
  const budget = createRetryBudget({
    ratio: 0,
    floorPerSecond: 0,
    windowMs: 10_000,
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
