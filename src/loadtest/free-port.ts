// A TCP port that was free a moment ago, for the servers the load test starts (gRPC, Connect, a
// private redis-server). Another process may take it before it is used; on a test or dev box
// that is rare enough.

import net from "node:net";

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
