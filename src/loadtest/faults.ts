// Faults injected while the virtual users run (`--fault KIND[@AT[:DURATION]]`): what each kind
// means, parsing the spec, and the schedule that fires them relative to the users' start and
// records what happened for the report. What a fault actually breaks is built by
// fault-environment.ts; runLoadTest only calls inject() and recover().

import { setTimeout as delay } from "node:timers/promises";
import type { StageCounts } from "./run-stats.js";

export const FAULT_KINDS = ["redis-outage", "postgres-outage", "worker-kill"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSpec {
  kind: FaultKind;
  /** After the users start. */
  atMs: number;
  /** How long the outage lasts; 0 for worker-kill (the cluster replaces the worker by itself). */
  durationMs: number;
}

const DEFAULTS: Record<FaultKind, { atMs: number; durationMs: number }> = {
  "redis-outage": { atMs: 5000, durationMs: 10_000 },
  "postgres-outage": { atMs: 5000, durationMs: 2000 },
  "worker-kill": { atMs: 5000, durationMs: 0 },
};

function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text);
  if (!match) throw new Error(`${what} must be a duration such as 5s, 2.5s or 500ms, got "${text}"`);
  return Math.round(Number(match[1]) * (match[2] === "s" ? 1000 : 1));
}

/** "redis-outage", "redis-outage@5s", "redis-outage@5s:10s", "worker-kill@3s"; throws on anything else. */
export function parseFaultSpec(text: string): FaultSpec {
  const match = /^([a-z-]+)(?:@([^:]+)(?::(.+))?)?$/.exec(text);
  const kind = match?.[1] as FaultKind | undefined;
  if (!match || !kind || !FAULT_KINDS.includes(kind))
    throw new Error(`--fault must be KIND[@AT[:DURATION]] with KIND one of ${FAULT_KINDS.join(", ")}, got "${text}"`);
  const atMs = match[2] === undefined ? DEFAULTS[kind].atMs : parseDuration(match[2], "the fault's start");
  if (kind === "worker-kill") {
    if (match[3] !== undefined)
      throw new Error("worker-kill takes no duration: the cluster replaces the killed worker by itself");
    return { kind, atMs, durationMs: 0 };
  }
  const durationMs =
    match[3] === undefined ? DEFAULTS[kind].durationMs : parseDuration(match[3], "the fault's duration");
  if (durationMs === 0) throw new Error(`${kind} needs a duration above 0`);
  return { kind, atMs, durationMs };
}

export const formatFaultSpec = (spec: FaultSpec) =>
  `${spec.kind}@${spec.atMs / 1000}s${spec.kind === "worker-kill" ? "" : `:${spec.durationMs / 1000}s`}`;

/** A fault ready to fire: each call resolves with one line saying what it did. */
export interface Fault {
  spec: FaultSpec;
  inject(): Promise<string>;
  /** Ends an outage; absent for worker-kill. */
  recover?(): Promise<string>;
}

/** What happened to one fault, for the report (seconds since the users started). */
export interface FaultRecord {
  spec: string;
  kind: FaultKind;
  injectedAtS?: number;
  recoveredAtS?: number;
  /** The users' gauges when the fault hit. */
  usersAtInjection?: { waiting: number; active: number; finished: number };
  /** Users not finished yet when the outage ended. */
  usersUnfinishedAtRecovery?: number;
  /** What inject() and recover() did, or why they could not. */
  notes: string[];
  /** Injected and (for an outage) recovered. */
  complete: boolean;
}

export interface FaultSchedule {
  /**
   * Call once the users are done: cancels faults not injected yet and waits for the outages
   * under way to end as planned, so the audit sees the stores back.
   */
  finish(): Promise<FaultRecord[]>;
}

/** Resolves true once `condition` holds (checked every 20 ms); rejects when `signal` aborts. */
async function waitUntil(condition: () => boolean, signal: AbortSignal): Promise<boolean> {
  while (!condition()) await delay(20, undefined, { signal });
  return true;
}

export function scheduleFaults(
  faults: readonly Fault[],
  counts: Readonly<StageCounts>,
  users: number,
  startedAt = performance.now(),
): FaultSchedule {
  const since = () => Math.round(performance.now() - startedAt) / 1000;
  const usersDone = new AbortController();
  const runs = faults.map(async (fault): Promise<FaultRecord> => {
    const record: FaultRecord = {
      spec: formatFaultSpec(fault.spec),
      kind: fault.spec.kind,
      notes: [],
      complete: false,
    };
    const due = await delay(Math.max(0, fault.spec.atMs - (performance.now() - startedAt)), true, {
      signal: usersDone.signal,
    }).catch(() => false);
    // A PostgreSQL outage disturbs only users who are booking (waiting is Redis, and admission
    // pauses with PostgreSQL). Wait for one admitted but not yet topped up: its seat and payment
    // calls are still to be sent. Any active user would not do: one whose last answer sits unread
    // in a lagging generator's socket makes no further call, and the outage then meets none.
    const ready =
      due &&
      (fault.spec.kind !== "postgres-outage" ||
        (await waitUntil(() => counts.activated > counts.toppedUp + counts.failed, usersDone.signal).catch(
          () => false,
        )));
    if (!ready) {
      record.notes.push(
        due
          ? "not injected: the users finished before one was about to book"
          : `not injected: the users finished before ${fault.spec.atMs / 1000} s`,
      );
      return record;
    }
    try {
      record.usersAtInjection = { waiting: counts.waiting, active: counts.active, finished: counts.finished };
      record.notes.push(await fault.inject());
      record.injectedAtS = since();
      if (fault.recover) {
        await delay(fault.spec.durationMs);
        record.usersUnfinishedAtRecovery = users - counts.finished;
        record.notes.push(await fault.recover());
        record.recoveredAtS = since();
      }
      record.complete = true;
    } catch (error) {
      record.notes.push(`failed: ${(error as Error).message}`);
    }
    return record;
  });
  return {
    finish() {
      usersDone.abort();
      return Promise.all(runs);
    },
  };
}
