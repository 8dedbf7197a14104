// README's "Operate a sale (AdminService)", executed as written: its sh blocks run in order as
// one bash script, with the real grpcurl and jq, against a test server with an admin token, and
// what each step did is checked in the output and in PostgreSQL.

import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { TestApp } from "../helpers/app.js";
import { findTool } from "../helpers/tools.js";
import { OPS_SECRET, startAdminTestApp } from "./admin-app.js";
import { findGrpcurl } from "./grpcurl.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const SECTION = "## Operate a sale (AdminService)";

/** The sh blocks of README's section, up to the next heading outside a block. */
function readShBlocks(): string[] {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const start = lines.indexOf(SECTION);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" heading`);
  const blocks: string[] = [];
  let block: { lang: string; lines: string[] } | undefined;
  for (const line of lines.slice(start + 1)) {
    if (block) {
      if (line === "```") {
        if (block.lang === "sh") blocks.push(block.lines.join("\n") + "\n");
        block = undefined;
      } else block.lines.push(line);
    } else if (line.startsWith("```")) block = { lang: line.slice(3).trim(), lines: [] };
    else if (/^#{1,6} /.test(line)) break;
  }
  return blocks;
}

let app: TestApp;
let toolDir: string;

test.before(async () => {
  toolDir = mkdtempSync(join(tmpdir(), "readme-operator-"));
  symlinkSync(findGrpcurl(), join(toolDir, "grpcurl"));
  symlinkSync(findTool("jq", undefined, "https://jqlang.org/download, or apt-get install jq"), join(toolDir, "jq"));
  app = await startAdminTestApp("readme_operator");
});

test.after.always(async () => {
  await app?.stop();
  if (toolDir) rmSync(toolDir, { recursive: true, force: true });
});

test("README's operator section runs with grpcurl: catalog, prequeue, live settings, stats, removal, cancel, audit log", async (t) => {
  t.timeout(300_000);
  const blocks = readShBlocks();
  t.is(blocks.length, 1);
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      "bash",
      ["-c", ["set -euo pipefail", ...blocks].join("\n")],
      {
        cwd: ROOT,
        timeout: 240_000,
        maxBuffer: 16 << 20,
        env: {
          ...process.env,
          PATH: `${toolDir}${delimiter}${process.env.PATH ?? ""}`,
          GRPC_ADDR: app.grpcAddress,
          ADMIN_SECRET: OPS_SECRET,
          DATABASE_URL: app.config.databaseUrl,
        },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr }),
    );
  });
  const context = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  t.is(result.code, 0, context);
  const scheduleId = /^schedule ([0-9a-f-]{36})$/m.exec(result.stdout)?.[1];
  t.truthy(scheduleId, context);

  const db = app.app.orm.em.fork().getConnection();
  const [schedule] = await db.execute<{ state: string; total_seats: number; seats: string }[]>(
    `select state, total_seats, (select count(*) from seat where schedule_id = s.id) as seats from schedule s where id = ?`,
    [scheduleId],
  );
  t.deepEqual(schedule, { state: "CANCELLED", total_seats: 50_000, seats: "50000" });
  t.regex(result.stdout, /"maxActiveUsers": 5000/);
  t.regex(result.stdout, /"settings": \{[^}]*"saleOpensAt": "\d{4}-/, "the queue settings tell when the sale opens");
  t.regex(result.stdout, /"state": "QUEUE_STATE_EXPIRED"/, "the removed token is EXPIRED");
  const prequeued = result.stdout.match(
    /^\{"userId":"fan-\d-\d+","state":"QUEUE_STATE_PREQUEUE","saleOpenTime":"\d{4}-/gm,
  );
  t.is(prequeued?.length, 5, "five users join the prequeue");
  t.regex(result.stdout, /^\{"prequeue":"5","waiting":"0"\}$/m, "the stats count them");
  t.regex(result.stdout, /^seed sha256 [0-9a-f]{64}$/m);
  t.regex(result.stdout, /^the seed matches its SHA-256$/m);
  t.regex(result.stdout, /^OK: every place is the one the seed gives/m, "verify-shuffle agrees");
  const places = result.stdout.match(/^\s+\d+ {2}fan-\d-\d+/gm);
  t.is(places?.length, 5, "verify-shuffle lists the five places");
  t.true((result.stdout.match(/"observeTime"/g) ?? []).length >= 2, "GetQueueStats and at least one watched message");
  const [settings] = await db.execute<{ admission_state: string; state_reason: string; max_active_users: number }[]>(
    `select admission_state, state_reason, max_active_users from queue_settings`,
  );
  t.deepEqual(settings, { admission_state: "CLOSED", state_reason: "sold out", max_active_users: 5000 });
  const audit = result.stdout
    .split("\n")
    .filter((line) => line.includes("\tops\t"))
    .map((line) => line.split("\t").slice(2).join(" "));
  t.deepEqual(audit, [
    "concert.v1.AdminService/UpdateSchedule OK",
    "concert.v1.AdminService/UpdateQueueSettings OK",
    "concert.v1.AdminService/RemoveQueueEntry OK",
    "concert.v1.AdminService/UpdateQueueSettings OK",
    "concert.v1.AdminService/UpdateQueueSettings OK",
    "concert.v1.AdminService/UpdateQueueSettings OK",
    "concert.v1.AdminService/UpdateSchedule OK",
    "concert.v1.AdminService/CreateSchedule OK",
    "concert.v1.AdminService/CreateConcert OK",
  ]);
});
