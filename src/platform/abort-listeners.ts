// Listeners of long-lived abort signals (the server's shutdown signal, a load test's run-wide
// signal), kept in a Set beside the signal rather than on it: EventTarget.addEventListener walks
// every listener already registered to reject duplicates, so with one listener per open stream or
// per call, adding them grows quadratic in the crowd.

const abortListeners = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `listener` once when `signal` aborts; returns a function that forgets it. O(1) either way. */
export function onAbort(signal: AbortSignal, listener: () => void): () => void {
  let listeners = abortListeners.get(signal);
  if (!listeners) {
    const created = new Set<() => void>();
    signal.addEventListener(
      "abort",
      () => {
        for (const notify of created) notify();
        created.clear();
      },
      { once: true },
    );
    abortListeners.set(signal, created);
    listeners = created;
  }
  const registered = listeners;
  registered.add(listener);
  return () => registered.delete(listener);
}
