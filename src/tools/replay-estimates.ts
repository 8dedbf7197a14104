// `npm run replay-estimates -- --trace DIR`: the "Estimated vs actual wait" section of a run
// traced with `npm run loadtest -- --trace-estimates DIR`, recomputed with this checkout's wait
// estimate (src/queue/wait-estimate.ts). The same run replayed through two versions compares
// them without the noise between two runs.

import { readFile } from "node:fs/promises";
import type { EstimateTraceRecord } from "../queue/wait-estimate-trace.js";
import { formatWaitAccuracy } from "../loadtest/report-text.js";
import type { RecordedWaits } from "../loadtest/wait-accuracy.js";
import { estimateTracePaths, replayWaitAccuracy } from "../loadtest/wait-replay.js";
import { parseCommandLine, usageError } from "./command-line.js";

const TOOL = "replay-estimates";
const USAGE = `usage: npm run replay-estimates -- --trace DIR

Replays a load test traced with \`npm run loadtest -- --trace-estimates DIR\` (DIR/server.jsonl:
every tick and hearing the server's line meter was fed and every estimate it was asked for, in
order; DIR/users.json: when each user's answers and ACTIVE arrived) through this checkout's wait
estimate, and prints the load test's "Estimated vs actual wait" section for it. With the code
that ran the load test it prints that run's own figures.

  --trace DIR     the directory --trace-estimates wrote
  --help, -h      this text`;

const values = parseCommandLine(TOOL, USAGE, { trace: { type: "string" } });
const dir = values.trace ?? usageError(TOOL, "--trace DIR is required");
const { serverFile, usersFile } = estimateTracePaths(dir);
// One after the other, so a directory holding neither names the server's file.
const read = (file: string) =>
  readFile(file, "utf8").catch((error: Error) => usageError(TOOL, `cannot read the trace: ${error.message}`));
const server = await read(serverFile);
const users = await read(usersFile);
const records = server
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => JSON.parse(line) as EstimateTraceRecord);
const { accuracy, paired, unpaired } = replayWaitAccuracy(records, JSON.parse(users) as RecordedWaits);
process.stdout.write(
  [
    `Estimated vs actual wait, replayed (${records.length} trace records; ${paired} answers paired with the server's estimate, ${unpaired} not)`,
    ...formatWaitAccuracy(accuracy),
    "",
  ].join("\n"),
);
