// Optimistic concurrency: a versioned entity's flush fails with OptimisticLockError when another
// writer got there first, and em.transactional does not retry by itself. The whole transaction
// is rerun on a fresh fork, with jittered backoff, a bounded number of times, and never past the
// call it is done for: once the call is over (deadline, cancel) no attempt begins or commits.

import { OptimisticLockError, UniqueConstraintViolationException } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { setTimeout as sleep } from "node:timers/promises";
import { DomainError } from "../domain-error.js";
import { callOutcome, throwIfCallOver, withinCall, type CallBound } from "./call-bound.js";
import type { ORM } from "./orm.js";

export interface RetryPolicy {
  attempts: number;
  /** Upper bound of the first backoff; doubles per attempt up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 40, baseDelayMs: 2, maxDelayMs: 100 };

/**
 * One transaction on a fresh fork for the call `bound` (if given): its row-lock waits end at the
 * call's deadline, and it rolls back instead of committing when the call is over by the time
 * `work` is done. A failure of a call that is over is reported as the call's own answer.
 */
export async function inCallTransaction<T>(
  orm: ORM,
  work: (em: EntityManager) => Promise<T>,
  bound?: CallBound,
): Promise<T> {
  throwIfCallOver(bound);
  try {
    return await withinCall(bound, () =>
      orm.em.fork().transactional(async (em) => {
        const result = await work(em);
        throwIfCallOver(bound);
        return result;
      }),
    );
  } catch (error) {
    throw await callOutcome(bound, error);
  }
}

/**
 * Runs `work` in a transaction on a fresh fork, rerunning it when an optimistic version check
 * or a racing insert of the same key fails, while the call `bound` lasts. Exhausted retries are
 * CONCURRENT_UPDATE (ABORTED).
 */
export async function withOptimisticRetry<T>(
  orm: ORM,
  work: (em: EntityManager) => Promise<T>,
  bound?: CallBound,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inCallTransaction(orm, work, bound);
    } catch (error) {
      const retryable = error instanceof OptimisticLockError || error instanceof UniqueConstraintViolationException;
      if (!retryable) throw error;
      if (attempt >= policy.attempts) {
        throw new DomainError("CONCURRENT_UPDATE", `gave up after ${attempt} attempts under contention; safe to retry`);
      }
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      try {
        await sleep(Math.random() * cap, undefined, bound ? { signal: bound.signal } : undefined);
      } catch (aborted) {
        throw await callOutcome(bound, aborted);
      }
    }
  }
}
