// Why a port could not be bound, as one line naming the setting to change; and a check that the
// ports are free before start-up spends seconds on the stores (and logs about them) in vain.

import net from "node:net";
import { UNRESOLVED_HOST } from "../redis/client.js";

export interface PortSetting {
  /** The variable that sets it: PORT or CONNECT_PORT. */
  variable: string;
  port: number;
}

export function explainListenFailure({ variable, port }: PortSetting, host: string, error: unknown): string {
  const text = String((error as Error).message ?? error).split("\n")[0]!;
  const code =
    (error as { code?: string }).code ??
    /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(text)?.[1] ??
    // grpc-js reports a HOST that does not resolve in words only.
    (/Name resolution failed/.test(text) ? "ENOTFOUND" : undefined);
  if (code === "EADDRINUSE")
    return `${variable}=${port} on ${host} is in use (another server running?): stop the other process or choose another ${variable}`;
  if (code === "EACCES")
    return `${variable}=${port} on ${host} needs privileges this process lacks: choose a port above 1023`;
  if (code === "EADDRNOTAVAIL")
    return `HOST=${host} is not an address of this machine: choose one of its addresses, or 0.0.0.0 for all`;
  if (code && UNRESOLVED_HOST.has(code))
    return `HOST=${host} does not resolve (${text}): choose an address of this machine, or 0.0.0.0 for all`;
  return `cannot listen on HOST=${host} ${variable}=${port} (${text})`;
}

/**
 * Binds each port for a moment and lets it go; throws the one-line explanation of the first that
 * cannot be bound. Port 0 (any free port) is skipped. A server that takes the port in between is
 * still reported by the real bind, in the same words.
 */
export async function checkPortsFree(ports: readonly PortSetting[], host: string): Promise<void> {
  for (const setting of ports.filter((p) => p.port !== 0)) {
    const probe = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once("error", reject);
        probe.listen({ port: setting.port, host, exclusive: true }, resolve);
      });
    } catch (error) {
      throw new Error(explainListenFailure(setting, host, error), { cause: error });
    } finally {
      await new Promise((resolve) => probe.close(resolve));
    }
  }
}
