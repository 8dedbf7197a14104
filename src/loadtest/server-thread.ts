// Worker-thread entry of `loadtest --start-server`: the real app (startApp) in this process but
// on its own thread and event loop, so the server and the load generator each get a core. Logs
// go to stderr to keep stdout for the report.

import { createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import { parentPort, workerData } from "node:worker_threads";
import { pino } from "pino";
import { startApp } from "../app.js";
import type { Config } from "../config.js";

export type ServerThreadMessage =
  { kind: "ready"; grpcPort: number } | { kind: "failed"; message: string } | { kind: "stopped" };

export interface ServerThreadData {
  config: Config;
  /** --trace-estimates: the waiting room's estimate trace, one JSON object per line. */
  estimateTraceFile?: string;
}

const port = parentPort!;
const { config, estimateTraceFile } = workerData as ServerThreadData;
const post = (message: ServerThreadMessage) => port.postMessage(message);

try {
  const logger = pino({ level: config.logLevel, base: { component: "loadtest-server" } }, pino.destination(2));
  const trace = estimateTraceFile ? createWriteStream(estimateTraceFile) : undefined;
  const app = await startApp(config, logger, {
    ...(trace && { estimateTrace: (record) => void trace.write(`${JSON.stringify(record)}\n`) }),
  });
  port.once("message", () => {
    void app
      .stop()
      .then(async () => {
        if (trace) await finished(trace.end());
      })
      .then(() => post({ kind: "stopped" }));
  });
  post({ kind: "ready", grpcPort: app.grpcPort });
} catch (error) {
  post({ kind: "failed", message: (error as Error).message });
}
