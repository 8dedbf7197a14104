// How much retrying a crowd of virtual users may add to the server's load, shared by every user
// of a run (Finagle's retry budget): retries may be `ratio` of the first attempts sent in the
// last `windowMs`, plus `floorPerSecond` over that window, so that a quiet run can still retry.
// A retry that finds the budget spent waits for it instead of failing: during an outage the users
// keep trying, but at the budget's pace, not all at once. The budget follows the crowd: ten
// thousand users joining in a second may retry two thousand joins in the next ten seconds.

export interface RetryBudget {
  /** A first attempt was sent. */
  deposit(): void;
  /** Resolves when a retry may go (at once, or once the budget allows), or when `signal` aborts. */
  withdraw(signal: AbortSignal): Promise<void>;
  /** Retries that had to wait for the budget. */
  readonly delayed: number;
}

/** The window is counted in this many slices. */
const SLICES = 10;

export function createRetryBudget(options: {
  ratio: number;
  floorPerSecond: number;
  windowMs: number;
  now?: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}): RetryBudget {
  const now = options.now ?? (() => performance.now());
  const sliceMs = options.windowMs / SLICES;
  // Per slice of the window: first attempts sent and retries taken.
  const calls = new Array<number>(SLICES).fill(0);
  const retries = new Array<number>(SLICES).fill(0);
  let slice = Math.floor(now() / sliceMs);
  let delayed = 0;
  const advance = () => {
    const current = Math.floor(now() / sliceMs);
    for (let s = slice + 1; s <= current && s <= slice + SLICES; s++) {
      calls[s % SLICES] = 0;
      retries[s % SLICES] = 0;
    }
    slice = Math.max(slice, current);
    return slice % SLICES;
  };
  const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);
  const left = () => options.ratio * sum(calls) + (options.floorPerSecond * options.windowMs) / 1000 - sum(retries);
  return {
    deposit() {
      calls[advance()]!++;
    },
    async withdraw(signal) {
      advance();
      if (left() < 1) delayed++;
      while (left() < 1 && !signal.aborted) {
        // Until the oldest slice leaves the window, jittered so the waiters do not wake together.
        await options.sleep(sliceMs * (1 + Math.random()), signal);
        advance();
      }
      retries[advance()]!++;
    },
    get delayed() {
      return delayed;
    },
  };
}
