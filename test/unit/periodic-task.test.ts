// The background-loop scheduler: nudges close together are served by one run after the nudge
// delay (how the outbox relay batches the payments of a short window), a nudge during a run asks
// for one more run, a run that reports a backlog goes again at once, and stop waits for a run.

import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { startPeriodicTask } from "../../src/platform/periodic-task.js";
import { waitFor } from "../helpers/wait.js";

const logger = pino({ level: "silent" });

/** A run that counts its starts and ends. Sleeps here only make runs last; no assertion reads the clock. */
function counter(runMs = 0, backlog: () => boolean = () => false) {
  const state = { runs: 0, finished: 0 };
  const run = async () => {
    state.runs++;
    if (runMs > 0) await sleep(runMs);
    state.finished++;
    return backlog();
  };
  return { state, run };
}

/** A bound for "eventually", for a machine busy with other test files. */
const EVENTUALLY = { timeoutMs: 30_000 };

test("nudges within the delay are served by one run, not one each", async (t) => {
  const { state, run } = counter();
  const task = startPeriodicTask({ name: "t", intervalMs: 60_000, nudgeDelayMs: 50, run, logger });
  await waitFor(() => state.runs === 1, EVENTUALLY);
  // Ten nudges with no timer able to fire between them, however busy the machine.
  for (let i = 0; i < 10; i++) task.nudge();
  t.is(state.runs, 1, "no run before the delay has passed");
  await waitFor(() => state.runs === 2, EVENTUALLY);
  await sleep(150);
  t.is(state.runs, 2, "one run served the ten nudges");
  await task.stop();
});

test("a nudge while a run is in progress asks for one more run after the delay", async (t) => {
  const { state, run } = counter(60);
  const task = startPeriodicTask({ name: "t", intervalMs: 60_000, nudgeDelayMs: 20, run, logger });
  await sleep(10);
  t.is(state.runs, 1);
  task.nudge();
  task.nudge();
  await waitFor(() => state.runs === 2, EVENTUALLY);
  await sleep(150);
  t.is(state.runs, 2, "the two nudges during the first run asked for one run");
  await task.stop();
});

test("without a nudge delay a nudge runs at once; a backlog runs again at once", async (t) => {
  let backlog = 3;
  const { state, run } = counter(0, () => backlog-- > 0);
  const task = startPeriodicTask({ name: "t", intervalMs: 60_000, run, logger });
  await waitFor(() => state.runs === 4, EVENTUALLY);
  task.nudge();
  await waitFor(() => state.runs === 5, EVENTUALLY);
  await task.stop();
  t.is(state.runs, 5);
});

test("stop waits for the run in progress and schedules nothing after it", async (t) => {
  const { state, run } = counter(50);
  const task = startPeriodicTask({ name: "t", intervalMs: 10, nudgeDelayMs: 0, run, logger });
  // The first run starts at once and lasts 50 ms; this resumes while it is still going (an earlier timer).
  await sleep(10);
  t.is(state.finished, state.runs - 1, "a run is in progress");
  task.nudge();
  await task.stop();
  t.is(state.finished, state.runs, "stop waited for it");
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
    await waitFor(() => state.runs === 1, EVENTUALLY); // the first run, at start
    if (nudge) task.nudge();
    await task.stop();
    t.is(state.runs, expected, `finishNudgeOnStop ${finishNudgeOnStop}, nudged ${nudge}`);
  }
});
