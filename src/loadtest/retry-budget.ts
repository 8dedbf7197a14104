// How much retrying a crowd of virtual users may add to the server's load, shared by every user
// of a run (Finagle's retry budget): each first attempt deposits `ratio` of a retry, and a floor
// of `floorPerSecond` accrues with time so that a quiet run can still retry; a retry withdraws
// one. A retry that finds the budget empty waits for it instead of failing: during an outage the
// users keep trying, but at the budget's pace, not all at once.

export interface RetryBudget {
  /** A first attempt was sent. */
  deposit(): void;
  /** Resolves when a retry may go (at once, or once the budget has refilled), or when `signal` aborts. */
  withdraw(signal: AbortSignal): Promise<void>;
  /** Retries that had to wait for the budget. */
  readonly delayed: number;
}

export function createRetryBudget(options: {
  ratio: number;
  floorPerSecond: number;
  /** Most retries saved up for a burst. */
  max: number;
  now?: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}): RetryBudget {
  const now = options.now ?? (() => performance.now());
  let tokens = options.max;
  let lastMs = now();
  let delayed = 0;
  const accrue = () => {
    const at = now();
    tokens = Math.min(options.max, tokens + ((at - lastMs) / 1000) * options.floorPerSecond);
    lastMs = at;
  };
  return {
    deposit() {
      tokens = Math.min(options.max, tokens + options.ratio);
    },
    async withdraw(signal) {
      accrue();
      if (tokens < 1) delayed++;
      while (tokens < 1 && !signal.aborted) {
        await options.sleep(((1 - tokens) / options.floorPerSecond) * 1000 * (1 + Math.random()), signal);
        accrue();
      }
      tokens -= 1;
    },
    get delayed() {
      return delayed;
    },
  };
}
