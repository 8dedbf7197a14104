// A worker thread that calls one RPC over its own HTTP/2 connection every 20 ms and reports the
// slowest call, for bench/connect-hardening.ts: in its own thread, an attack sent from the main
// thread cannot delay its calls on the client side, so what it sees is the server's own stall.

import http2 from "node:http2";
import { once } from "node:events";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

interface ProberData {
  url: string;
  path: string;
}

export interface CallProber {
  /** Resolves once the connection is up and has served a few calls (the server's first ones are cold). */
  ready: Promise<void>;
  /** Forgets the calls so far: the slowest is counted from here. */
  measure(): void;
  /** Stops calling; resolves with the slowest call, in ms, since measure(). */
  stop(): Promise<number>;
}

const WARM_UP_CALLS = 5;

export function startCallProber(url: string, path: string): CallProber {
  const worker = new Worker(new URL(import.meta.url), {
    execArgv: ["--import", "tsx"],
    workerData: { url, path } satisfies ProberData,
  });
  return {
    ready: once(worker, "message").then(() => undefined),
    measure: () => worker.postMessage("measure"),
    async stop() {
      worker.postMessage("stop");
      const [slowest] = (await once(worker, "message")) as [number];
      await worker.terminate();
      return slowest;
    },
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { url, path } = workerData as ProberData;
  const session = http2.connect(url);
  session.on("error", () => {});
  let stopped = false;
  let slowest = 0;
  port.on("message", (message: string) => {
    if (message === "measure") slowest = 0;
    else stopped = true;
  });
  const call = () =>
    new Promise<void>((resolve) => {
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
      stream.on("data", () => {});
      stream.on("close", resolve);
      stream.on("error", () => {});
      stream.end("{}");
    });
  for (let calls = 1; !stopped; calls++) {
    const startedAt = performance.now();
    await call();
    slowest = Math.max(slowest, performance.now() - startedAt);
    if (calls === WARM_UP_CALLS) port.postMessage("ready");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  session.close();
  port.postMessage(slowest);
  port.close();
}
