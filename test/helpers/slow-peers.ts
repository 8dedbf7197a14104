// Peers that send a request a byte at a time, for the Connect port's request-timeout tests and
// bench/connect-hardening.ts. Each resolves with how long the server let its socket or stream live.

import http2 from "node:http2";
import net from "node:net";

/** Writes `prefix`, then `bytes` one at a time every `everyMs`, over HTTP/1.1, until the server closes. */
export function trickleHttp1(port: number, prefix: string, bytes: string, everyMs: number): Promise<number> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(prefix);
      let i = 0;
      const timer = setInterval(() => socket.destroyed || socket.write(bytes[i++ % bytes.length]!), everyMs);
      socket.once("close", () => {
        clearInterval(timer);
        resolve(performance.now() - startedAt);
      });
    });
    socket.on("error", () => {});
    socket.on("data", () => {});
  });
}

/** Opens an HTTP/2 POST to `path` and sends its body a space at a time every `everyMs`, until the server closes it. */
export function trickleHttp2Body(url: string, path: string, everyMs: number): Promise<number> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    const session = http2.connect(url);
    session.on("error", () => {});
    const stream = session.request(
      { ":method": "POST", ":path": path, "content-type": "application/json" },
      { endStream: false },
    );
    stream.on("error", () => {});
    stream.on("data", () => {});
    const timer = setInterval(() => stream.destroyed || stream.write(" "), everyMs);
    stream.once("close", () => {
      clearInterval(timer);
      session.close();
      resolve(performance.now() - startedAt);
    });
  });
}
