// The container's health check (src/tools/healthcheck.ts, run by docker-compose.yml) as Docker
// runs it: a separate node process with the server's environment, exit 0 only for SERVING.

import test from "ava";
import { execFile } from "node:child_process";
import { freePort } from "../../src/loadtest/free-port.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { SERVER_START_TIMEOUT_MS, waitFor } from "../helpers/wait.js";

const TOOL = new URL("../../src/tools/healthcheck.ts", import.meta.url).pathname;

let app: TestApp;

test.before(async () => {
  app = await startTestApp("healthcheck_tool");
});

test.after.always(async () => {
  await app?.stop();
});

function runCheck(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", TOOL],
      // The bound only stops a hang: the tool's own deadline is 3 s.
      { env: { ...process.env, ...env }, timeout: SERVER_START_TIMEOUT_MS },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test("exit 0 and one line when the server's gRPC health is SERVING (HOST 0.0.0.0 is asked over loopback)", async (t) => {
  const env = { PORT: String(app.app.grpcPort), HOST: "0.0.0.0" };
  let outcome = await runCheck(env);
  // Health turns SERVING after the server's first PostgreSQL ping; Docker's retries cover that too.
  await waitFor(async () => (outcome = await runCheck(env)).code === 0, {
    timeoutMs: SERVER_START_TIMEOUT_MS,
    intervalMs: 500,
    message: () => outcome.stderr,
  });
  t.is(outcome.stdout, `healthcheck: 127.0.0.1:${app.app.grpcPort} is SERVING\n`);
  t.is(outcome.stderr, "");
});

test("exit 1 and one line on stderr when nothing answers on PORT", async (t) => {
  const port = await freePort();
  const outcome = await runCheck({ PORT: String(port), HOST: "127.0.0.1" });
  t.is(outcome.code, 1);
  t.regex(outcome.stderr, new RegExp(`^healthcheck: no answer from 127\\.0\\.0\\.1:${port} \\([^\\n]+\\)\\n$`));
  t.is(outcome.stdout, "");
});

test("exit 1 when PORT is 0: a random port cannot be checked", async (t) => {
  const outcome = await runCheck({ PORT: "0" });
  t.is(outcome.code, 1);
  t.regex(outcome.stderr, /^healthcheck: PORT=0 picks a free port at random/);
});
