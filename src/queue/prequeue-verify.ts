// What `npm run verify-shuffle` checks, from PostgreSQL alone: the concert's committed seed
// hashes to the published digest, every prequeue member's place in the line is the one the seed
// gives its user id (prequeue-order.ts), and the line was admitted in its order, the prequeue
// ahead of everyone who joined after the opening.

import { compareLinePlaces, prequeueSeq, seedDigest } from "./prequeue-order.js";
import type { Query } from "./queue-db.js";

export interface LinePlace {
  /** 1-based place among the prequeue's members (a user who left and joined again keeps one place). */
  place: number;
  userId: string;
  token: string;
  seq: bigint;
  state: string;
  admittedAt: Date | undefined;
}

export interface ShuffleCheck {
  concertId: string;
  opensAt: Date;
  seedSha256: string;
  seed: string;
  prequeue: LinePlace[];
  /** Entries of users who joined after the opening (FIFO places). */
  laterJoiners: number;
  admitted: number;
  problems: string[];
}

export type ShuffleVerdict =
  | { kind: "no-prequeue" }
  | { kind: "not-open"; opensAt: Date; seedSha256: string }
  | { kind: "checked"; check: ShuffleCheck };

interface EntryRow {
  token: string;
  user_id: string;
  seq: string;
  state: string;
  admitted_at: string | null;
}

export async function verifyShuffle(query: Query, concertId: string): Promise<ShuffleVerdict> {
  const [record] = await query<{ seed: string; seed_sha256: string; opens_at: string; passed: boolean }>(
    `select seed, seed_sha256, opens_at::text, opens_at <= now() as passed from prequeue_seed where concert_id = $1`,
    [concertId],
  );
  if (!record) return { kind: "no-prequeue" };
  const opensAt = new Date(record.opens_at);
  if (!record.passed) return { kind: "not-open", opensAt, seedSha256: record.seed_sha256 };
  const rows = await query<EntryRow>(
    `select token, user_id, seq::text as seq, state, admitted_at::text from queue_entry where concert_id = $1`,
    [concertId],
  );
  const line = rows
    .map((r) => ({ ...r, seq: BigInt(r.seq), admitted_at: r.admitted_at === null ? null : new Date(r.admitted_at) }))
    .sort(compareLinePlaces);
  const problems: string[] = [];
  if (seedDigest(record.seed) !== record.seed_sha256)
    problems.push(`the seed does not hash to the published SHA-256 ${record.seed_sha256}`);

  const prequeue: LinePlace[] = [];
  let place = 0;
  for (const row of line.filter((r) => r.seq < 0n)) {
    if (prequeue.at(-1)?.seq !== row.seq) place++;
    const expected = prequeueSeq(record.seed, row.user_id);
    if (expected !== row.seq)
      problems.push(`${row.user_id} (token ${row.token}) stands at ${row.seq}; the seed gives ${expected}`);
    const admittedAt = row.admitted_at ?? undefined;
    prequeue.push({ place, userId: row.user_id, token: row.token, seq: row.seq, state: row.state, admittedAt });
  }

  // Admission follows the line: nobody admitted before someone ahead of them who was admitted too.
  let latest: { at: Date; userId: string } | undefined;
  let admitted = 0;
  for (const row of line) {
    if (!row.admitted_at) continue;
    admitted++;
    if (latest && row.admitted_at < latest.at)
      problems.push(`${row.user_id} was admitted at ${row.admitted_at.toISOString()}, before ${latest.userId} ahead`);
    else latest = { at: row.admitted_at, userId: row.user_id };
  }
  const check: ShuffleCheck = {
    concertId,
    opensAt,
    seedSha256: record.seed_sha256,
    seed: record.seed,
    prequeue,
    laterJoiners: line.length - prequeue.length,
    admitted,
    problems,
  };
  return { kind: "checked", check };
}
