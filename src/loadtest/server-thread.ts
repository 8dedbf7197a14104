// Worker-thread entry of `loadtest --start-server`: the real app (startApp) in this process but
// on its own thread and event loop, so the server and the load generator each get a core. Logs
// go to stderr to keep stdout for the report.

import { parentPort, workerData } from "node:worker_threads";
import { pino } from "pino";
import { startApp } from "../app.js";
import type { Config } from "../config.js";

export type ServerThreadMessage =
  { kind: "ready"; grpcPort: number } | { kind: "failed"; message: string } | { kind: "stopped" };

const port = parentPort!;
const config = workerData as Config;
const post = (message: ServerThreadMessage) => port.postMessage(message);

try {
  const logger = pino({ level: config.logLevel, base: { component: "loadtest-server" } }, pino.destination(2));
  const app = await startApp(config, logger);
  port.once("message", () => {
    void app.stop().then(() => post({ kind: "stopped" }));
  });
  post({ kind: "ready", grpcPort: app.grpcPort });
} catch (error) {
  post({ kind: "failed", message: (error as Error).message });
}
