// README's "The whole flow by hand", executed as written: its sh blocks run in order as one bash
// script, with the real grpcurl and jq, against a test server with the demo data (own database,
// own Redis key prefix). The script reads the server's address from GRPC_ADDR, as README's block
// does. Each step's output is checked, and grpcurl's error output must be the text block README
// shows for it. grpcurl is $GRPCURL, else the one on PATH (.ci/run puts ../shared/bin on PATH).

import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { findTool } from "../helpers/tools.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const SECTION = "### The whole flow by hand";
/** grpcurl exits with 64 plus the gRPC code of a failed call; README's error call is UNAUTHENTICATED (16). */
const UNAUTHENTICATED_EXIT = 64 + 16;

interface FlowSection {
  /** The sh blocks, in order. */
  scripts: string[];
  /** The text blocks: output README shows. */
  outputs: string[];
}

/** The fenced blocks of README's section, up to the next heading outside a block. */
function readFlowSection(): FlowSection {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const start = lines.indexOf(SECTION);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" heading`);
  const section: FlowSection = { scripts: [], outputs: [] };
  let block: { lang: string; lines: string[] } | undefined;
  for (const line of lines.slice(start + 1)) {
    if (block) {
      if (line === "```") {
        const body = block.lines.join("\n") + "\n";
        if (block.lang === "sh") section.scripts.push(body);
        if (block.lang === "text") section.outputs.push(body);
        block = undefined;
      } else block.lines.push(line);
    } else if (line.startsWith("```")) block = { lang: line.slice(3).trim(), lines: [] };
    else if (/^#{1,6} /.test(line)) break;
  }
  return section;
}

/** Lines with their runs of spaces and tabs made one space: README may render tabs differently. */
const normalized = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((line) => line.replace(/[ \t]+/g, " ").trim());

interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<ScriptResult> {
  return new Promise((resolve) => {
    // grpcurl -max-time bounds the stream; this bounds everything else on a busy machine.
    execFile("bash", ["-c", script], { cwd: ROOT, env, timeout: 300_000, maxBuffer: 16 << 20 }, (error, out, err) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout: out, stderr: err });
    });
  });
}

let app: TestApp;
let toolDir: string;

test.before(async () => {
  // README's commands call plain `grpcurl` and `jq`: the ones found are linked under those names.
  const grpcurl = findTool(
    "grpcurl",
    "GRPCURL",
    "https://github.com/fullstorydev/grpcurl/releases; our machines have ../shared/bin/grpcurl",
  );
  const jq = findTool("jq", undefined, "https://jqlang.org/download, or apt-get install jq");
  toolDir = mkdtempSync(join(tmpdir(), "readme-grpcurl-"));
  symlinkSync(grpcurl, join(toolDir, "grpcurl"));
  symlinkSync(jq, join(toolDir, "jq"));
  // README's flow runs on the demo data of `npm start` and the default admission settings, which
  // admit a lone user at the next tick (a second), well within the block's -max-time.
  app = await startTestApp("readme_grpcurl", { seedDemoData: true });
});

test.after.always(async () => {
  await app?.stop();
  if (toolDir) rmSync(toolDir, { recursive: true, force: true });
});

test("README's whole flow by hand runs with grpcurl: join, watch, top up, hold, pay, event, decoded error", async (t) => {
  t.timeout(360_000);
  const { scripts, outputs } = readFlowSection();
  t.true(scripts.length >= 2, "the section has the flow block and the error block");
  // -e: every step before README's error call must succeed; that call ends the script.
  const result = await runBash(["set -euo pipefail", ...scripts].join("\n"), {
    ...process.env,
    PATH: `${toolDir}${delimiter}${process.env.PATH ?? ""}`,
    GRPC_ADDR: app.grpcAddress,
    REDIS_URL: app.config.redisUrl,
    REDIS_CLUSTER_NODES: "",
    REDIS_KEY_PREFIX: app.config.redisKeyPrefix,
  });
  const { stdout, stderr } = result;
  const context = `exit ${result.code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
  t.is(result.code, UNAUTHENTICATED_EXIT, context);

  // list and describe, through reflection
  for (const service of ["concert.v1.QueueService", "concert.v1.BookingService", "concert.v1.WalletService"])
    t.regex(stdout, new RegExp(`^${service.replaceAll(".", "\\.")}$`, "m"), `list: ${service}`);
  t.regex(stdout, /^grpc\.health\.v1\.Health$/m, "list: health");
  t.regex(stdout, /rpc ReserveSeat \( \.concert\.v1\.ReserveSeatRequest \)/, "describe the method");
  t.regex(stdout, /message ReserveSeatRequest \{/, "describe the request message");

  // join, then the WatchQueue stream ends on ACTIVE
  const token = /^token ([0-9a-f]{32})$/m.exec(stdout)?.[1];
  t.truthy(token, `JoinQueue gave a token\n${context}`);
  t.regex(
    stdout,
    new RegExp(
      `"token": "${token}",\\s+"concertId": "[^"]+",\\s+"userId": "fan-\\d+",\\s+"state": "QUEUE_STATE_ACTIVE"`,
    ),
  );

  // top up, hold, pay
  t.regex(stdout, /"kind": "LEDGER_ENTRY_KIND_TOP_UP"/, "TopUp answered");
  t.regex(stdout, /"idempotencyKey": "topup-1"/);
  const reservation = /^reservation ([0-9a-f-]{36})$/m.exec(stdout)?.[1];
  t.truthy(reservation, `ReserveSeat gave a reservation id\n${context}`);
  t.regex(stdout, new RegExp(`"payment": \\{\\s+"id": "[0-9a-f-]{36}",\\s+"reservationId": "${reservation}"`));
  t.regex(stdout, new RegExp(`"id": "${reservation}",[^}]*"status": "RESERVATION_STATUS_CONFIRMED"`));

  // npm run events: the payment.completed event of that reservation
  t.regex(
    stdout,
    new RegExp(`"event_type":"payment.completed","aggregate_type":"reservation","aggregate_id":"${reservation}"`),
  );

  // the error call: grpcurl's output, details decoded, is what README shows
  t.is(outputs.length, 1, "README shows one output: the error's");
  const errorOutput = stderr.slice(stderr.lastIndexOf("ERROR:"));
  t.regex(errorOutput, /"reason": "QUEUE_TOKEN_INVALID"/);
  t.deepEqual(normalized(errorOutput), normalized(outputs[0]!), "README's error output matches grpcurl's");
});
