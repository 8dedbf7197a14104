// Optimistic concurrency: a versioned entity's flush fails with OptimisticLockError when another
// writer got there first, and em.transactional does not retry by itself. The whole transaction
// is rerun on a fresh fork, with jittered backoff, a bounded number of times.

import { OptimisticLockError, UniqueConstraintViolationException } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { setTimeout as sleep } from "node:timers/promises";
import { DomainError } from "../domain-error.js";
import type { ORM } from "./orm.js";

export interface RetryPolicy {
  attempts: number;
  /** Upper bound of the first backoff; doubles per attempt up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 40, baseDelayMs: 2, maxDelayMs: 100 };

/**
 * Runs `work` in a transaction on a fresh fork, rerunning it when an optimistic version check
 * or a racing insert of the same key fails. Exhausted retries are CONCURRENT_UPDATE (ABORTED).
 */
export async function withOptimisticRetry<T>(
  orm: ORM,
  work: (em: EntityManager) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await orm.em.fork().transactional(work);
    } catch (error) {
      const retryable = error instanceof OptimisticLockError || error instanceof UniqueConstraintViolationException;
      if (!retryable) throw error;
      if (attempt >= policy.attempts) {
        throw new DomainError("CONCURRENT_UPDATE", `gave up after ${attempt} attempts under contention; safe to retry`);
      }
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * cap);
    }
  }
}
