// One unary call as a virtual user makes it: a per-call deadline, its latency recorded, every
// error counted by code and reason, and transient failures retried with jittered backoff. Each
// mutation carries an idempotency key or request id, so a retry after an unknown outcome is safe.

import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { GrpcCallOptions } from "../platform/rpc/grpc-client.js";
import { onAbort } from "../platform/abort-listeners.js";
import type { RetryBudget } from "./retry-budget.js";
import { increment, type RunStats } from "./run-stats.js";

export interface CallContext {
  stats: RunStats;
  rpcTimeoutMs: number;
  /** Aborted when the overall --timeout is reached. */
  signal: AbortSignal;
  /** Shared by the run's users; without one, retries are limited per call only. */
  retryBudget?: RetryBudget;
  /** performance.now() when a burst's or ramp's first user started: joins are also timed from it. */
  burstStartedAt?: number;
}

/**
 * A transient error is retried while either lasts: attempts (the first included), or time since
 * the first attempt, so that an outage of a few seconds (a PostgreSQL failover, a dead worker)
 * costs retries, not users, however fast each attempt fails.
 */
const MAX_ATTEMPTS = 6;
const RETRY_WINDOW_MS = 20_000;

const TRANSIENT = new Set([Code.Unavailable, Code.ResourceExhausted, Code.Aborted, Code.DeadlineExceeded]);

/** Codes after which a mutation may or may not have happened on the server. */
const AMBIGUOUS = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Canceled, Code.Unknown, Code.Internal]);

/** The gRPC spelling of a code: DeadlineExceeded → DEADLINE_EXCEEDED. */
export function codeName(code: Code): string {
  return Code[code]
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .toUpperCase()
    .replace("CANCELED", "CANCELLED");
}

export function errorReason(error: ConnectError): string | undefined {
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}

export function isTransient(error: ConnectError): boolean {
  return TRANSIENT.has(error.code);
}

export function recordError(stats: RunStats, rpc: string, error: ConnectError): void {
  const reason = errorReason(error);
  const key = reason ? `${rpc} ${codeName(error.code)} ${reason}` : `${rpc} ${codeName(error.code)}`;
  increment(stats.errors, key);
  if (!stats.errorMessages.has(key)) stats.errorMessages.set(key, error.rawMessage);
}

/** Exponential backoff with jitter: ~50 ms, 100 ms, 200 ms, … capped at 2 s. */
export function backoffMs(attempt: number): number {
  return Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

/**
 * The delay the server asked for (google.rpc.RetryInfo, sent with RESOURCE_EXHAUSTED OVERLOADED),
 * plus up to a quarter of it so a refused crowd does not come back all at once; undefined without one.
 */
export function serverRetryDelayMs(error: ConnectError): number | undefined {
  const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
  if (!delay) return undefined;
  const ms = Number(delay.seconds) * 1000 + delay.nanos / 1e6;
  return ms * (1 + Math.random() / 4);
}

/** Resolves after ms, or at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      forget();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const forget = onAbort(signal, done);
  });
}

/**
 * Runs `invoke` until it succeeds, fails with a non-transient error, or runs out of retries;
 * throws the last error as a ConnectError.
 */
export async function callWithRetry<T>(
  context: CallContext,
  rpc: string,
  invoke: (options: GrpcCallOptions) => Promise<T>,
  options: { metadata?: Record<string, string>; mutation?: boolean } = {},
): Promise<T> {
  const { stats, rpcTimeoutMs, signal, retryBudget } = context;
  const firstAttempt = performance.now();
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      if (attempt === 1) retryBudget?.deposit();
      // The run-wide signal itself: the client unhooks it when the call ends.
      const result = await invoke({ deadlineMs: rpcTimeoutMs, signal, metadata: options.metadata });
      stats.latency.record(rpc, performance.now() - started);
      return result;
    } catch (thrown) {
      stats.latency.record(rpc, performance.now() - started);
      const error = ConnectError.from(thrown);
      recordError(stats, rpc, error);
      const budgetLeft = attempt < MAX_ATTEMPTS || performance.now() - firstAttempt < RETRY_WINDOW_MS;
      const again = isTransient(error) && budgetLeft && !signal.aborted;
      if (!again) {
        if (options.mutation && AMBIGUOUS.has(error.code)) stats.ambiguousMutations++;
        throw error;
      }
      stats.counts.retries++;
      // Never sooner than the server asked; our own backoff when it did not say.
      await sleep(Math.max(backoffMs(attempt), serverRetryDelayMs(error) ?? 0), signal);
      await retryBudget?.withdraw(signal);
    }
  }
}
