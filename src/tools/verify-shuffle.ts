// `npm run verify-shuffle -- --concert ID`: recomputes a concert's prequeue order from its
// published seed and the queue entries PostgreSQL recorded, and says whether the line matches.

import { isUuid } from "../platform/validation.js";
import { closeORM } from "../platform/db/orm.js";
import { isSeed } from "../queue/prequeue-order.js";
import { createQueueDb } from "../queue/queue-db.js";
import { verifyShuffle, type ShuffleCheck } from "../queue/prequeue-verify.js";
import { environmentHelp, parseCommandLine, usageError } from "./command-line.js";
import { openDatabaseFor } from "./database-url.js";

const TOOL = "verify-shuffle";
const USAGE = `usage: npm run verify-shuffle -- --concert ID [--seed HEX]

Checks a concert's sale-start prequeue once its sale has opened: that the committed seed hashes
to the SHA-256 published before the opening, that every member's place in the line is the one
the seed gives (the first 52 bits of SHA-256(seed || user id), ascending), and that the line was
admitted in that order, the prequeue ahead of everyone who joined later. Prints the order, then
OK (exit 0) or each problem found (exit 1).

  --concert ID    the concert (uuid)
  --seed HEX      the seed as AdminService.GetQueueSettings published it: checked to be the one
                  recorded
  --help, -h      this text

${environmentHelp(["DATABASE_URL"])}`;

const values = parseCommandLine(TOOL, USAGE, { concert: { type: "string" }, seed: { type: "string" } });
const concertId = values.concert ?? usageError(TOOL, "--concert ID is required");
if (!isUuid(concertId)) usageError(TOOL, `--concert must be a uuid, not ${concertId}`);
if (values.seed !== undefined && !isSeed(values.seed)) usageError(TOOL, "--seed must be 64 hex digits");

function print(check: ShuffleCheck): void {
  const lines = [
    `concert      ${check.concertId}`,
    `opening      ${check.opensAt.toISOString()}`,
    `seed sha256  ${check.seedSha256}`,
    `seed         ${check.seed}`,
    "",
    ["place", "user".padEnd(24), "token".padEnd(32), "state".padEnd(8), "admitted at"].join("  "),
    ...check.prequeue.map((p) =>
      [
        String(p.place).padStart(5),
        p.userId.padEnd(24),
        p.token,
        p.state.padEnd(8),
        p.admittedAt?.toISOString() ?? "-",
      ].join("  "),
    ),
    "",
    `prequeue: ${check.prequeue.at(-1)?.place ?? 0} users; later joiners: ${check.laterJoiners}; admitted: ${check.admitted}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

const orm = await openDatabaseFor(TOOL, 1);
try {
  const db = await createQueueDb(orm, () => undefined);
  const verdict = await verifyShuffle(db.query, concertId);
  if (verdict.kind === "no-prequeue") {
    process.stderr.write(`${TOOL}: concert ${concertId} has no sale-start prequeue\n`);
    process.exitCode = 1;
  } else if (verdict.kind === "not-open") {
    process.stderr.write(
      `${TOOL}: the sale opens at ${verdict.opensAt.toISOString()}; its seed (SHA-256 ${verdict.seedSha256}) is published then\n`,
    );
    process.exitCode = 1;
  } else {
    const { check } = verdict;
    if (values.seed !== undefined && values.seed !== check.seed)
      check.problems.unshift("the seed given is not the one recorded for this concert");
    print(check);
    for (const problem of check.problems) process.stdout.write(`FAIL: ${problem}\n`);
    if (check.problems.length === 0)
      process.stdout.write("OK: every place is the one the seed gives, and the line was admitted in that order\n");
    process.exitCode = check.problems.length === 0 ? 0 : 1;
  }
} finally {
  await closeORM(orm);
}
