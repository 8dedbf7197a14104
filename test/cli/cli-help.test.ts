// The npm run tools as a newcomer meets them: `--help` prints the usage (options, defaults, the
// environment read) and exits 0; an unknown option is one line pointing at --help, exit 2; the
// seed's summary says what it counts (per concert, per schedule) and what this run added.

import test from "ava";
import { execFile } from "node:child_process";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { limitConcurrency, SERVER_START_TIMEOUT_MS } from "../helpers/wait.js";

const ROOT = new URL("../../", import.meta.url).pathname;
/** At most two tools at once: each compiles its imports through tsx, which a busy machine feels. */
const limited = limitConcurrency(2);

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return limited(
    () =>
      new Promise((resolve) => {
        execFile(
          command,
          args,
          // The bound only stops a hang; every run here ends by itself within seconds.
          { cwd: ROOT, env: { ...process.env, ...env }, timeout: SERVER_START_TIMEOUT_MS },
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        );
      }),
  );
}

/** The script of each npm run tool, and what its usage must mention. */
const TOOLS: Record<string, { script: string; mentions: string[] }> = {
  seed: {
    script: "src/tools/seed.ts",
    mentions: ["--concerts N", "--schedules N", "--seats N", "schedules per concert (3)", "DATABASE_URL"],
  },
  events: {
    script: "src/tools/events.ts",
    mentions: [
      "--follow",
      "--republish-since TIME",
      "without --follow it does not wait for more",
      "REDIS_URL",
      "REDIS_CLUSTER_NODES",
      "REDIS_KEY_PREFIX",
      "DATABASE_URL",
    ],
  },
  migrate: { script: "src/tools/migrate.ts", mentions: ["DATABASE_URL", "--help"] },
  "verify-shuffle": {
    script: "src/tools/verify-shuffle.ts",
    mentions: ["--concert ID", "--seed HEX", "SHA-256(seed || user id)", "DATABASE_URL"],
  },
  loadtest: {
    script: "src/tools/loadtest.ts",
    mentions: [
      "--users N",
      "--start-server",
      "--fault",
      "--trace-estimates DIR",
      "--warm-up N",
      "$DATABASE_URL",
      "$REDIS_URL",
      "$REDIS_KEY_PREFIX",
    ],
  },
  "replay-estimates": {
    script: "src/tools/replay-estimates.ts",
    mentions: ["--trace DIR", "--trace-estimates DIR", "Estimated vs actual wait"],
  },
  bench: {
    script: "bench/run.ts",
    mentions: ["--suite LIST", "--duration S", "--workers LIST", "--out FILE", "TEST_PG_ADMIN_URL", "REDIS_URL"],
  },
};

for (const [tool, { script, mentions }] of Object.entries(TOOLS)) {
  test(`npm run ${tool} -- --help prints the usage and exits 0`, async (t) => {
    const outcome = await run("npm", ["run", "--silent", tool, "--", "--help"]);
    t.is(outcome.code, 0, outcome.stderr);
    t.true(outcome.stdout.startsWith(`usage: npm run ${tool}`), outcome.stdout);
    for (const text of mentions) t.true(outcome.stdout.includes(text), `mentions ${text}`);
    t.is(outcome.stderr, "");
  });

  test(`${tool}: an unknown option is one line pointing at --help, exit 2`, async (t) => {
    const outcome = await run(process.execPath, ["--import", "tsx", script, "--no-such-option"]);
    t.is(outcome.code, 2);
    t.is(
      outcome.stderr,
      `${tool}: Unknown option '--no-such-option'; \`npm run ${tool} -- --help\` lists the options\n`,
    );
    t.is(outcome.stdout, "");
  });
}

let database: TestDatabase;

test.before(async () => {
  database = await createTestDatabase("cli_help");
});

test.after.always(async () => {
  await database?.drop();
});

test("seed says per concert and per schedule, and counts only what this run added", async (t) => {
  const seed = async (...args: string[]) => {
    const outcome = await run(process.execPath, ["--import", "tsx", "src/tools/seed.ts", ...args], {
      DATABASE_URL: database.url,
    });
    t.is(outcome.code, 0, outcome.stderr);
    // The duration varies; everything else is exact.
    return outcome.stdout.replace(/ready in \d+\.\d s/, "ready in T s");
  };
  const catalog = (seats: number) =>
    `seed: 1 concert × 2 schedules per concert × ${seats} seats per schedule (2 schedules, ${2 * seats} seats in all) ready in T s`;

  t.is(
    await seed("--concerts", "1", "--schedules", "2", "--seats", "50"),
    `${catalog(50)}; new: 1 concert, 2 schedules, 100 seats\n`,
  );
  t.is(
    await seed("--concerts", "1", "--schedules", "2", "--seats", "50"),
    `${catalog(50)}; nothing new, it was all there\n`,
  );
  t.is(
    await seed("--concerts", "1", "--schedules", "2", "--seats", "60"),
    `${catalog(60)}; new: 0 concerts, 0 schedules, 20 seats; 2 schedules grown to 60 seats\n`,
  );
});

test("replay-estimates without --trace, or with a directory holding no trace: one line, exit 2", async (t) => {
  const missing = await run(process.execPath, ["--import", "tsx", "src/tools/replay-estimates.ts"]);
  t.is(missing.code, 2);
  t.is(
    missing.stderr,
    "replay-estimates: --trace DIR is required; `npm run replay-estimates -- --help` lists the options\n",
  );
  const empty = await run(process.execPath, [
    "--import",
    "tsx",
    "src/tools/replay-estimates.ts",
    "--trace",
    ROOT + "proto",
  ]);
  t.is(empty.code, 2);
  t.regex(empty.stderr, /^replay-estimates: cannot read the trace: ENOENT.*server\.jsonl/);
});

test("seed refuses a count out of range with one line, exit 2", async (t) => {
  const outcome = await run(process.execPath, ["--import", "tsx", "src/tools/seed.ts", "--seats", "0"]);
  t.is(outcome.code, 2);
  t.regex(
    outcome.stderr,
    /^seed: --seats must be an integer from 1 to \d+, got "0"; `npm run seed -- --help` lists the options\n$/,
  );
});
