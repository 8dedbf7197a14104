// A private redis-server child process for fault tests, on a free port, so a test can kill and
// restart Redis without touching the shared instance on 6379.

import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { waitFor } from "./wait.js";

export interface PrivateRedis {
  url: string;
  /** Kills the server (SIGKILL: no shutdown save) and waits for the process to exit. */
  kill(): Promise<void>;
  /** Starts a new, empty server on the same port. */
  start(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    await waitFor(() => accepts(port), { timeoutMs: 10_000, message: () => `redis-server on port ${port}` });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child!.kill("SIGKILL");
      await exited;
    },
    start,
  };
}
