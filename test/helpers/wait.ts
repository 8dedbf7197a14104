// Polls a condition instead of sleeping a fixed time: tests stay fast when the machine is idle
// and do not flake when it is busy.

/**
 * How long a spawned server (tsx compiling on the fly, migrations, connecting to the stores) may
 * take to say it listens. Seconds on an idle machine; the bound is for a 2-core machine shared
 * with another full test run, where 30 s was seen to be too short.
 */
export const SERVER_START_TIMEOUT_MS = 90_000;

/**
 * Resolves once `condition` holds. The default bound is generous on purpose: it only decides how
 * long a failing test takes to say so, while a passing one returns as soon as the condition holds,
 * and on a 2-core machine shared with another test run "soon" can take many seconds.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; message?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${options.message?.() ?? "condition"}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}

/**
 * Runs the functions given to the returned one at most `limit` at a time, the rest in call order:
 * for steps such as starting a server, of which several at once starve each other on a busy machine.
 */
export function limitConcurrency(limit: number): <T>(run: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queued: (() => void)[] = [];
  return async (run) => {
    if (running >= limit) await new Promise<void>((resolve) => queued.push(resolve));
    else running++;
    try {
      return await run();
    } finally {
      // Hands the slot straight to the next in line, or frees it.
      const next = queued.shift();
      if (next) next();
      else running--;
    }
  };
}
