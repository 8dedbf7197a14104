// The Connect / gRPC-Web / gRPC endpoint served by connect-node. One port speaks both HTTP/2
// without TLS (prior knowledge: connect, grpc and grpc-web clients) and HTTP/1.1 (browsers,
// curl): Node's h2c server cannot fall back to HTTP/1.1 by itself (allowHTTP1 needs TLS/ALPN),
// so the first bytes of each connection pick the server.

import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/** What non-RPC routes need of a request and response, whichever HTTP version carried them. */
export interface PlainRequest {
  method?: string | undefined;
  url?: string | undefined;
}
export interface PlainResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body?: string): unknown;
}

export interface ConnectServerOptions {
  services: readonly { service: DescService; impl: ServiceImpl<DescService> }[];
  readMaxBytes: number;
  defaultDeadlineMs: number;
  shutdownSignal: AbortSignal;
  /** Non-RPC routes, e.g. GET /metrics. Returns false when the path is not its own. */
  extraRoutes?: (req: PlainRequest, res: PlainResponse) => boolean;
}

export interface ConnectServer {
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting and lets in-flight calls finish (streams end via shutdownSignal). */
  close(): Promise<void>;
  /** Drops every connection; for when the shutdown grace period has passed. */
  destroy(): void;
}

/**
 * A stream over `socket` that starts with the bytes already read for sniffing. The HTTP/2 server
 * reads a net.Socket's native handle directly and would miss them; a plain Duplex makes it read
 * through JavaScript, where the unshifted bytes are.
 */
function replayingStream(socket: net.Socket): Duplex {
  const proxy = new Duplex({
    read: () => void socket.resume(),
    write: (chunk, encoding, callback) => void socket.write(chunk, encoding, callback),
    final: (callback) => void socket.end(callback),
    destroy: (error, callback) => {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on("data", (data) => {
    if (!proxy.push(data)) socket.pause();
  });
  socket.on("end", () => proxy.push(null));
  socket.on("close", () => proxy.destroy());
  socket.on("error", (error) => proxy.destroy(error));
  for (const key of ["remoteAddress", "remotePort", "remoteFamily", "localAddress", "localPort"] as const) {
    Object.defineProperty(proxy, key, { get: () => socket[key] });
  }
  return proxy;
}

export function createConnectServer(options: ConnectServerOptions): ConnectServer {
  const handler = connectNodeAdapter({
    routes(router) {
      for (const { service, impl } of options.services) router.service(service, impl);
    },
    readMaxBytes: options.readMaxBytes,
    maxTimeoutMs: options.defaultDeadlineMs * 10,
    shutdownSignal: options.shutdownSignal,
    fallback(req, res) {
      if (options.extraRoutes?.(req, res as unknown as PlainResponse)) return;
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    },
  });
  const h2 = http2.createServer({}, handler);
  const h1 = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("data", (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const isHttp2 = first.subarray(0, HTTP2_PREFACE.length).equals(HTTP2_PREFACE.subarray(0, Math.min(first.length, HTTP2_PREFACE.length)));
      if (isHttp2) {
        h2.emit("connection", replayingStream(socket));
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => resolve((front.address() as net.AddressInfo).port));
      });
    },
    async close() {
      const closed = Promise.all([
        new Promise<void>((r) => front.close(() => r())),
        new Promise<void>((r) => h2.close(() => r())),
        new Promise<void>((r) => h1.close(() => r())),
      ]);
      h1.closeIdleConnections();
      // h2.close() waits for open sessions: GOAWAY lets each finish its streams, then close.
      for (const session of sessions) session.close();
      await closed;
    },
    destroy() {
      for (const socket of sockets) socket.destroy();
    },
  };
}
