// The background-loop scheduler: nudges close together are served by one run after the nudge
// delay (how the outbox relay batches the payments of a short window), a nudge during a run asks
// for one more run, a run that reports a backlog goes again at once, and stop waits for a run.

import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { startPeriodicTask } from "../../src/platform/periodic-task.js";
import { waitFor } from "../helpers/wait.js";

const logger = pino({ level: "silent" });

function counter(runMs = 0, backlog: () => boolean = () => false) {
  const state = { runs: 0 };
  const run = async () => {
    state.runs++;
    if (runMs > 0) await sleep(runMs);
    return backlog();
  };
  return { state, run };
}

test("nudges within the delay are served by one run, not one each", async (t) => {
  const { state, run } = counter();
  const task = startPeriodicTask({ name: "t", intervalMs: 60_000, nudgeDelayMs: 50, run, logger });
  await waitFor(() => state.runs === 1, { timeoutMs: 2000 });
  for (let i = 0; i < 10; i++) {
    task.nudge();
    await sleep(2);
  }
  t.is(state.runs, 1, "no run before the delay has passed");
  await sleep(150);
  t.is(state.runs, 2);
  await task.stop();
});

test("a nudge while a run is in progress asks for one more run after the delay", async (t) => {
  const { state, run } = counter(60);
  const task = startPeriodicTask({ name: "t", intervalMs: 60_000, nudgeDelayMs: 20, run, logger });
  await sleep(10);
  t.is(state.runs, 1);
  task.nudge();
  task.nudge();
  await waitFor(() => state.runs === 2, { timeoutMs: 2000 });
  await sleep(150);
  t.is(state.runs, 2, "the two nudges during the first run asked for one run");
  await task.stop();
});

test("without a nudge delay a nudge runs at once; a backlog runs again at once", async (t) => {
  let backlog = 3;
  const { state, run } = counter(0, () => backlog-- > 0);
  const task = startPeriodicTask({ name: "t", intervalMs: 60_000, run, logger });
  await waitFor(() => state.runs === 4, { timeoutMs: 2000 });
  task.nudge();
  await waitFor(() => state.runs === 5, { timeoutMs: 2000 });
  await task.stop();
  t.is(state.runs, 5);
});

test("stop waits for the run in progress and schedules nothing after it", async (t) => {
  const { state, run } = counter(50);
  const task = startPeriodicTask({ name: "t", intervalMs: 10, nudgeDelayMs: 0, run, logger });
  await sleep(10);
  task.nudge();
  const started = performance.now();
  await task.stop();
  t.true(performance.now() - started >= 30);
  const runs = state.runs;
  await sleep(100);
  t.is(state.runs, runs);
});

test("finishNudgeOnStop: a nudge still waiting for its delay is run by stop(); without it, or without a nudge, stop runs nothing", async (t) => {
  for (const [finishNudgeOnStop, nudge, expected] of [
    [true, true, 2],
    [false, true, 1],
    [true, false, 1],
  ] as const) {
    const { state, run } = counter();
    const task = startPeriodicTask({
      name: "t",
      intervalMs: 60_000,
      nudgeDelayMs: 60_000,
      run,
      logger,
      finishNudgeOnStop,
    });
    await waitFor(() => state.runs === 1, { timeoutMs: 2000 }); // the first run, at start
    if (nudge) task.nudge();
    await task.stop();
    t.is(state.runs, expected, `finishNudgeOnStop ${finishNudgeOnStop}, nudged ${nudge}`);
  }
});
