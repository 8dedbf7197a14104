// Background loops (hold sweeper, outbox relay): one run at a time per process, again at once
// while a run reports a backlog, otherwise every interval or sooner when nudged. Cross-process
// safety is the task's own business (row locks with SKIP LOCKED); this only keeps one process from
// racing itself.

import type { Logger } from "./logger.js";
import { createOutageLog } from "./outage-log.js";

export interface PeriodicTask {
  /** Runs as soon as the current run (if any) ends, instead of waiting for the interval. */
  nudge(): void;
  /** Stops scheduling and waits for a run in progress (and, with finishNudgeOnStop, for the run a nudge still asks for). */
  stop(): Promise<void>;
}

export interface PeriodicTaskOptions {
  name: string;
  intervalMs: number;
  /**
   * How long a nudge waits before the run it asks for (0: none), so that nudges arriving close
   * together are served by one run: the outbox relay, nudged after every payment, then publishes
   * the payments of a short window in one batch instead of one transaction per payment.
   */
  nudgeDelayMs?: number;
  /** One unit of work; resolves true when more is waiting. */
  run: () => Promise<boolean>;
  logger: Logger;
  /** Called on every failed run (e.g. to count it in a metric); failures are logged once per outage. */
  onFailure?: () => void;
  /**
   * A nudge not yet served when stop() is called gets its run before stop() resolves, instead of
   * being dropped with the timer: the outbox relay publishes the payments of its last nudge
   * window at shutdown rather than at another process's poll or the next start.
   */
  finishNudgeOnStop?: boolean;
}

export function startPeriodicTask(options: PeriodicTaskOptions): PeriodicTask {
  const { name, intervalMs, run, logger } = options;
  const nudgeDelayMs = options.nudgeDelayMs ?? 0;
  let timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (performance.now() time); Infinity when none is pending. */
  let dueAt = Infinity;
  let running: Promise<void> | undefined;
  let nudged = false;
  /** A nudge that no run has started since. */
  let nudgePending = false;
  let stopped = false;
  // Logged loudly once per outage, not every interval while a store is down.
  const outage = createOutageLog(logger);

  /** (Re)arms the timer; with onlyIfSooner, keeps a pending timer that fires earlier anyway. */
  const schedule = (delayMs: number, onlyIfSooner = false) => {
    if (stopped) return;
    const due = performance.now() + delayMs;
    if (onlyIfSooner && due >= dueAt) return;
    clearTimeout(timer);
    dueAt = due;
    timer = setTimeout(tick, delayMs);
  };

  const runOnce = async () => {
    let more = false;
    try {
      more = await run();
      outage.recovered({ task: name }, "background task recovered");
    } catch (error) {
      options.onFailure?.();
      outage.failed({ task: name, err: error }, "background task failed; retrying every interval");
    }
    running = undefined;
    const delay = more ? 0 : nudged ? nudgeDelayMs : intervalMs;
    nudged = false;
    schedule(delay);
  };

  function tick() {
    timer = undefined;
    dueAt = Infinity;
    if (running) {
      nudged = true;
      return;
    }
    nudgePending = false;
    running = runOnce();
  }

  schedule(0);
  return {
    nudge() {
      nudgePending = true;
      if (running) nudged = true;
      else schedule(nudgeDelayMs, true);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      if (options.finishNudgeOnStop && nudgePending) {
        nudgePending = false;
        await runOnce();
      }
    },
  };
}
