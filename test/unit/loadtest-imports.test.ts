// The load generator's start: it talks gRPC through its own node:http2 client, so it must not
// load grpc-js, whose compilation every run would pay for and never use (a fair share of the
// generator's start-up CPU). The tool is started as the load tests start it, with a preload
// that reports which grpc-js modules were loaded by the time it exits.

import test from "ava";
import { execFile } from "node:child_process";

const ROOT = new URL("../../", import.meta.url).pathname;

const REPORT_GRPC_JS = [
  'import { createRequire } from "node:module";',
  'const cache = createRequire(process.cwd() + "/").cache;',
  'process.on("exit", () => process.stderr.write(`grpc-js modules: ${Object.keys(cache).filter((k) => k.includes("/@grpc/grpc-js/")).length}\\n`));',
].join("\n");

function loadedGrpcJsModules(script: string, args: string[]): Promise<number> {
  const preload = `data:text/javascript,${encodeURIComponent(REPORT_GRPC_JS)}`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", preload, "--import", "tsx", script, ...args],
      { cwd: ROOT, timeout: 120_000 },
      (error, _stdout, stderr) => {
        const match = /grpc-js modules: (\d+)/.exec(stderr);
        if (match) resolve(Number(match[1]));
        else reject(error ?? new Error(`no report from the preload: ${stderr}`));
      },
    );
  });
}

test("the load generator starts without loading grpc-js", async (t) => {
  t.is(await loadedGrpcJsModules("src/tools/loadtest.ts", ["--help"]), 0);
});

test("the check sees grpc-js when a module loads it", async (t) => {
  // The same preload around a module that does use grpc-js: the count above is not zero by mistake.
  t.true((await loadedGrpcJsModules("src/tools/healthcheck.ts", ["--help"])) > 0);
});
