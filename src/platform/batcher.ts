// Group commit: requests that arrive within a short window (at most maxDelayMs, or until maxItems
// are waiting) are handed to one `run` call, and each caller gets its own item's outcome. The
// waiting room uses it so a flash crowd costs PostgreSQL a few statements per thousand joins.

export interface BatcherOptions<I, O> {
  maxItems: number;
  /** 0: the batch goes out once the event loop has handled the I/O at hand (setImmediate). */
  maxDelayMs: number;
  /**
   * Handles one batch; resolves to one outcome per item, in order: a value, or an Error for
   * that item alone. A rejection fails every item of the batch.
   */
  run(items: I[]): Promise<(O | Error)[]>;
}

export interface Batcher<I, O> {
  submit(item: I): Promise<O>;
  /** Runs what is waiting and resolves when every batch in flight has finished. */
  drain(): Promise<void>;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export function createBatcher<I, O>(options: BatcherOptions<I, O>): Batcher<I, O> {
  let waiting: Waiting<I, O>[] = [];
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  const inFlight = new Set<Promise<void>>();

  async function run(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const outcomes = await options.run(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcome instanceof Error) w.reject(outcome);
        else if (i >= outcomes.length) w.reject(new Error("the batch returned no outcome for this item"));
        else w.resolve(outcome as O);
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }

  function flush(): void {
    if (options.maxDelayMs === 0) clearImmediate(timer as NodeJS.Immediate | undefined);
    else clearTimeout(timer as NodeJS.Timeout | undefined);
    timer = undefined;
    if (waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    const done = run(batch).finally(() => inFlight.delete(done));
    inFlight.add(done);
  }

  return {
    submit(item) {
      return new Promise<O>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= options.maxItems) flush();
        else timer ??= options.maxDelayMs === 0 ? setImmediate(flush) : setTimeout(flush, options.maxDelayMs);
      });
    },
    async drain() {
      flush();
      await Promise.all(inFlight);
    },
  };
}
