// How honest the waiting room's wait estimate was: each waiting user keeps every estimate it was
// told (the JoinQueue answer and every WatchQueue message) and, once ACTIVE arrives, compares each
// with the wait it then really had from that moment. Only users who waited at least
// MIN_WAIT_MS count, so a tick's rounding on a short wait does not swamp the figures.

import { percentile } from "./latency-stats.js";

/** Users who waited less than this from their JoinQueue answer to ACTIVE are left out. */
export const MIN_WAIT_MS = 2000;
const TENTHS = 10;

/** One estimate as the user received it: performance.now() of receipt, and the wait told (undefined: unknown). */
export interface ToldWait {
  atMs: number;
  waitMs: number | undefined;
}

/** Relative errors |estimate − actual| / actual of one group of answers; unknown answers counted apart. */
export interface ErrorSummary {
  answers: number;
  unknown: number;
  median: number;
  p90: number;
  /** Median of (estimate − actual) / actual: above 0 the estimate ran long, below it short. */
  medianSigned: number;
}

export interface WaitAccuracy {
  /** Users who reached ACTIVE after waiting at least MIN_WAIT_MS. */
  users: number;
  minWaitMs: number;
  /** The JoinQueue answer. */
  atJoin: ErrorSummary;
  /** The first known estimate each user got (at join, or the first update that had one). */
  firstKnown: ErrorSummary;
  /** Every answer: the JoinQueue answer and every WatchQueue message until ACTIVE. */
  allUpdates: ErrorSummary;
  /** allUpdates by when the answer arrived, in tenths of the users' wall time. */
  tenths: (ErrorSummary & { fromS: number; toS: number })[];
}

/** A growable list of (answer time, signed relative error or NaN for unknown). */
function createSamples() {
  let at = new Float64Array(4096);
  let error = new Float64Array(4096);
  let count = 0;
  return {
    push(atMs: number, signedError: number) {
      if (count === at.length) {
        const grown = (old: Float64Array) => {
          const next = new Float64Array(old.length * 2);
          next.set(old);
          return next;
        };
        at = grown(at);
        error = grown(error);
      }
      at[count] = atMs;
      error[count++] = signedError;
    },
    *entries(): Generator<[number, number]> {
      for (let i = 0; i < count; i++) yield [at[i]!, error[i]!];
    },
  };
}

function summarize(signedErrors: Iterable<number>): ErrorSummary {
  const signed: number[] = [];
  let answers = 0;
  for (const value of signedErrors) {
    answers++;
    if (!Number.isNaN(value)) signed.push(value);
  }
  const absolute = Float64Array.from(signed, Math.abs).sort();
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    answers,
    unknown: answers - signed.length,
    median: round(percentile(absolute, 50)),
    p90: round(percentile(absolute, 90)),
    medianSigned: round(percentile(Float64Array.from(signed).sort(), 50)),
  };
}

/** Every user's answers as the book got them (`keep`), for replaying another estimator against them (wait-replay.ts). */
export interface RecordedWaits {
  /** The run's clock origin (the first user's start, performance.now()) and its users' wall time. */
  originMs: number;
  wallMs: number;
  users: { token: string; told: ToldWait[]; activeAtMs: number }[];
}

export function createWaitAccuracyBook(options: { keep?: boolean } = {}) {
  let originMs: number | undefined;
  let users = 0;
  const kept: RecordedWaits["users"] = [];
  const atJoin: number[] = [];
  const firstKnown: number[] = [];
  const updates = createSamples();
  return {
    /** The run's clock starts with the first user. */
    markStart(nowMs: number): void {
      originMs ??= nowMs;
    },
    /** One user's answers, the first being JoinQueue's, and when ACTIVE arrived. */
    record(told: readonly ToldWait[], activeAtMs: number, token = ""): void {
      if (options.keep) kept.push({ token, told: [...told], activeAtMs });
      const joinedAt = told[0]?.atMs;
      if (joinedAt === undefined || activeAtMs - joinedAt < MIN_WAIT_MS) return;
      users++;
      const errorOf = ({ atMs, waitMs }: ToldWait) => {
        const actual = activeAtMs - atMs;
        return waitMs === undefined ? NaN : (waitMs - actual) / Math.max(actual, 1);
      };
      atJoin.push(errorOf(told[0]!));
      const known = told.find((answer) => answer.waitMs !== undefined);
      if (known) firstKnown.push(errorOf(known));
      for (const answer of told) updates.push(answer.atMs - (originMs ?? 0), errorOf(answer));
    },
    /** What `keep` kept; undefined without it. */
    recorded(wallMs: number): RecordedWaits | undefined {
      return options.keep ? { originMs: originMs ?? 0, wallMs, users: kept } : undefined;
    },
    summary(wallMs: number): WaitAccuracy {
      const errors = (from: number, to: number) =>
        (function* () {
          for (const [at, error] of updates.entries()) if (at >= from && (at < to || to === Infinity)) yield error;
        })();
      const tenth = Math.max(wallMs, 1) / TENTHS;
      return {
        users,
        minWaitMs: MIN_WAIT_MS,
        atJoin: summarize(atJoin),
        firstKnown: summarize(firstKnown),
        allUpdates: summarize(errors(-Infinity, Infinity)),
        tenths: Array.from({ length: TENTHS }, (_, i) => ({
          fromS: Math.round(i * tenth) / 1000,
          toS: Math.round((i + 1) * tenth) / 1000,
          ...summarize(errors(i === 0 ? -Infinity : i * tenth, i === TENTHS - 1 ? Infinity : (i + 1) * tenth)),
        })),
      };
    },
  };
}

export type WaitAccuracyBook = ReturnType<typeof createWaitAccuracyBook>;
