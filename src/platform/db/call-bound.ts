// A call's bound (its abort signal and deadline) as the database work done for it sees it. Work
// that runs inside `withinCall` stops when the call does: a transaction begun there waits for a
// row lock at most until the call's deadline (SET LOCAL lock_timeout, sent with its BEGIN and
// first statement in one round trip), and the transaction helpers check the signal before each attempt and before
// COMMIT, so a call answered DEADLINE_EXCEEDED or CANCELLED does not go on to commit.

import { AsyncLocalStorage } from "node:async_hooks";
import { once } from "node:events";

export interface CallBound {
  /** Aborted when the call's deadline passes or the client cancels it; its reason is the call's answer. */
  signal: AbortSignal;
  /** When the deadline passes (epoch ms), if the call has one. */
  deadlineAt?: number;
}

const current = new AsyncLocalStorage<CallBound>();

/** Runs `work` with `bound` as the call every transaction begun inside it belongs to. */
export function withinCall<T>(bound: CallBound | undefined, work: () => Promise<T>): Promise<T> {
  return bound ? current.run(bound, work) : work();
}

const NEVER = new AbortController().signal;

/**
 * Runs `work` for no call (`deadlineAt` undefined) or for one that ends at `deadlineAt`: a
 * transaction shared by several calls (group-commit.ts) waits for row locks until the last of them.
 */
export function withinDeadline<T>(deadlineAt: number | undefined, work: () => T): T {
  return deadlineAt === undefined ? current.exit(work) : current.run({ signal: NEVER, deadlineAt }, work);
}

/**
 * Slack over the remaining time: the transport's own deadline timer should fire first, so the
 * caller sees the call's DEADLINE_EXCEEDED rather than PostgreSQL's lock timeout.
 */
const LOCK_TIMEOUT_SLACK_MS = 100;

/** PostgreSQL's lock_not_available, raised when lock_timeout ends a wait. */
export const isLockTimeout = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === "55P03";

/**
 * The text a BEGIN goes out as (statement-folding.ts asks when a transaction begins): inside
 * `withinCall` for a call with a deadline, `begin; set local lock_timeout = …`, which costs no
 * round trip of its own; else the BEGIN as it is.
 */
export function boundBegin(text: string): string {
  const deadlineAt = current.getStore()?.deadlineAt;
  if (deadlineAt === undefined) return text;
  const timeoutMs = Math.max(Math.ceil(deadlineAt - Date.now()), 1) + LOCK_TIMEOUT_SLACK_MS;
  return `${text}; set local lock_timeout = ${timeoutMs}`;
}

/** Throws the call's answer (its signal's reason) if it has been given, i.e. the call is over. */
export function throwIfCallOver(bound: CallBound | undefined): void {
  if (bound?.signal.aborted) throw bound.signal.reason;
}

/**
 * The error to report for a failure of work done for `bound`: the call's own answer once it is
 * over (a statement cancelled or a lock wait ended by the deadline is no bug), else `error`. A lock
 * timeout comes a little after the deadline, so it waits briefly for the transport's timer.
 */
export async function callOutcome(bound: CallBound | undefined, error: unknown): Promise<unknown> {
  if (!bound) return error;
  if (!bound.signal.aborted && isLockTimeout(error)) {
    await once(bound.signal, "abort", { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
  }
  return bound.signal.aborted ? bound.signal.reason : error;
}
