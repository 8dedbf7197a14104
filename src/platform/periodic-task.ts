// Background loops (hold sweeper, outbox relay): one run at a time per process, again at once
// while a run reports a backlog, otherwise every interval or sooner when nudged. Cross-process
// safety is the task's own business (row locks with SKIP LOCKED); this only keeps one process from
// racing itself.

import type { Logger } from "./logger.js";

export interface PeriodicTask {
  /** Runs as soon as the current run (if any) ends, instead of waiting for the interval. */
  nudge(): void;
  /** Stops scheduling and waits for a run in progress. */
  stop(): Promise<void>;
}

export interface PeriodicTaskOptions {
  name: string;
  intervalMs: number;
  /** One unit of work; resolves true when more is waiting. */
  run: () => Promise<boolean>;
  logger: Logger;
}

export function startPeriodicTask(options: PeriodicTaskOptions): PeriodicTask {
  const { name, intervalMs, run, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let nudged = false;
  let stopped = false;
  let failing = false;

  const schedule = (delayMs: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
  };

  const runOnce = async () => {
    let more = false;
    try {
      more = await run();
      if (failing) logger.info({ task: name }, "background task recovered");
      failing = false;
    } catch (error) {
      // Logged loudly once per outage, not every interval while a store is down.
      if (!failing) logger.warn({ task: name, err: error }, "background task failed; retrying every interval");
      failing = true;
    }
    running = undefined;
    const again = more || nudged;
    nudged = false;
    schedule(again ? 0 : intervalMs);
  };

  function tick() {
    if (running) {
      nudged = true;
      return;
    }
    running = runOnce();
  }

  schedule(0);
  return {
    nudge() {
      if (running) nudged = true;
      else schedule(0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
