// The Connect / gRPC-Web / gRPC endpoint served by connect-node. One port speaks both HTTP/2
// without TLS (prior knowledge: connect, grpc and grpc-web clients) and HTTP/1.1 (browsers,
// curl): Node's h2c server cannot fall back to HTTP/1.1 by itself (allowHTTP1 needs TLS/ALPN),
// so the first bytes of each connection pick the server.

import type { DescService } from "@bufbuild/protobuf";
import {
  cors as connectCors,
  createConnectRouter,
  createContextValues,
  ConnectError,
  Code,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import cors from "cors";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { deferUntilNotReset, guardRapidReset, withRequestDeadline } from "./connect-guards.js";
import { checkedBody, rejectMalformedRequests, requestCheckKey } from "./request-validation.js";

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0");
/** What the Connect port takes compressed; the body check (request-validation.ts) reads the same. */
const COMPRESSIONS = [compressionGzip, compressionBrotli];

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
  /** Non-RPC routes, e.g. GET /metrics. Returns false when the path is not its own. */
  extraRoutes?: (req: PlainRequest, res: PlainResponse) => boolean;
  /** Origins browsers may call from (CORS), or ["*"]; empty: no CORS headers. */
  corsOrigins?: readonly string[];
  /** Request headers of our own that browsers must be allowed to send (e.g. x-queue-token). */
  corsHeaders?: readonly string[];
  /** A connection that sends nothing for this long before its first byte is closed (default 10 s). */
  firstByteTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed (default 2 min; open streams heartbeat well within it). */
  idleTimeoutMs?: number;
  /** A call whose answer could not be written (other than a cancelled one); default: stderr, as connect-node does. */
  onCallFailure?: (error: unknown, rpc: string) => void;
  /** A request whose headers and body have not all arrived this long after it began is closed (default 10 s). */
  requestTimeoutMs?: number;
  /**
   * Streams an HTTP/2 peer may reset before they were answered: a burst, refilled at a rate per
   * second (defaults 1,000 and 100/s); a stream reset before its call started counts ten. Past
   * it the connection gets GOAWAY ENHANCE_YOUR_CALM.
   */
  resetBurst?: number;
  resetRatePerSecond?: number;
  /** A connection closed by one of these guards, for the logs. */
  onConnectionClosed?: (reason: string) => void;
}

const FIRST_BYTE_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 120_000;
const REQUEST_TIMEOUT_MS = 10_000;
const RESET_BURST = 1_000;
const RESET_RATE_PER_SECOND = 100;
/**
 * Node's HTTP/2 server ends a session that resets more than streamResetBurst streams, refilled at
 * streamResetRate per second (its Rapid Reset guard; defaults 1,000 and 33/s). A Connect client
 * resets every stream that ends in an error or is cancelled, so one backend-for-frontend
 * connection carrying a crowd's WatchQueue streams met that limit after ~1,000 such ends, and
 * every call on it failed with INTERNAL. Raised, not removed: still a bound per connection.
 */
const STREAM_RESET_BURST = 10_000;
const STREAM_RESET_RATE = 1_000;

export interface ConnectServer {
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting and lets in-flight calls finish (streams end via shutdownSignal). */
  close(): Promise<void>;
  /** Drops every connection; for when the shutdown grace period has passed. */
  destroy(): void;
}

/** Express-style middleware; HTTP/2's compatibility request and response have what it uses. */
type Middleware = (req: http.IncomingMessage, res: http.ServerResponse, next: () => void) => void;

/**
 * Cross-origin access for browsers (Connect and gRPC-Web both need CORS preflights), with the
 * \`cors\` package: it answers preflights (204, cached for two hours) and adds the allow and
 * expose headers to the calls themselves. The method and header lists are connect-es's own
 * (\`cors\` from @connectrpc/connect) plus ours, so they follow the protocols.
 */
function corsMiddleware(options: ConnectServerOptions): Middleware | undefined {
  const origins = options.corsOrigins ?? [];
  if (origins.length === 0) return undefined;
  return cors({
    origin: origins[0] === "*" ? "*" : [...origins],
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, ...(options.corsHeaders ?? [])],
    exposedHeaders: [...connectCors.exposedHeaders],
    maxAge: 7200,
  }) as Middleware;
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * connect-node's connectNodeAdapter, plus a check of the request messages on their way in
 * (request-validation.ts): connect-node would answer one that does not decode with INTERNAL.
 * The router is connect's own, with the same options and compressions the adapter sets.
 */
function createRpcHandler(options: ConnectServerOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    readMaxBytes: options.readMaxBytes,
    // What a Node timer can hold (~24.8 days); connect-node refuses a longer client timeout with
    // INVALID_ARGUMENT instead of letting its timer overflow and fire at once.
    maxTimeoutMs: 2 ** 31 - 1,
    acceptCompression: COMPRESSIONS,
    interceptors: [rejectMalformedRequests],
  });
  for (const { service, impl } of options.services) router.service(service, impl);
  const paths = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      (res as unknown as PlainResponse).writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    const check = {};
    const contextValues = createContextValues().set(requestCheckKey, check);
    let request;
    try {
      request = universalRequestFromNodeRequest(req, res, undefined, contextValues);
    } catch (error) {
      // No authority (an HTTP/1.0 request without Host): connect-node throws here, and an
      // exception thrown from the request listener would end the process.
      (res as unknown as PlainResponse).writeHead(400, { "content-type": "text/plain" });
      res.end(`bad request: ${(error as Error).message}\n`);
      return;
    }
    const body = request.body as AsyncIterable<Uint8Array>;
    // A replaced message changes the body's length: connect-node would hold it against
    // Content-Length, which it reads before the body (the header is this request's own copy).
    request.header.delete("content-length");
    handler({
      ...request,
      body: checkedBody(handler.method, request.header, body, check, options.readMaxBytes, COMPRESSIONS),
    })
      .then((response) => universalResponseToNodeResponse(response, res))
      .catch((reason: unknown) => {
        // As connect-node's adapter: a cancelled call is nobody's error; anything else is reported.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        const rpc = `${handler.service.typeName}/${handler.method.name}`;
        if (options.onCallFailure) options.onCallFailure(reason, rpc);
        // eslint-disable-next-line no-console -- the default of a server built without a logger (app.ts passes one)
        else console.error(`handler for rpc ${rpc} failed`, reason);
      });
  };
}

export function createConnectServer(options: ConnectServerOptions): ConnectServer {
  const handler = createRpcHandler(options);
  const withCors = corsMiddleware(options);
  let closing = false;
  /**
   * HTTP/1.1 connections and the responses each has under way. Closing ends an idle one at once
   * and a busy one with its last response, instead of keeping it alive for more calls that would
   * hold the shutdown (HTTP/2 sessions get GOAWAY). Tracked here: the HTTP/1.1 server never
   * listens itself, so Node's own idle-connection tracking (closeIdleConnections) has nothing.
   */
  const h1Busy = new Map<net.Socket, number>();
  /** Responses under way, whose headers may still say Connection: close when closing begins. */
  const h1Responses = new Set<http.ServerResponse>();
  const endIfIdle = (socket: net.Socket) => {
    if (closing && (h1Busy.get(socket) ?? 0) === 0) socket.end();
  };
  // Extra routes (GET /metrics) first and without CORS headers: not for scripts on other origins.
  const serve: typeof handler = (req, res) => {
    if (req.httpVersionMajor === 1) {
      const socket = req.socket;
      h1Busy.set(socket, (h1Busy.get(socket) ?? 0) + 1);
      const response = res as http.ServerResponse;
      if (closing) response.setHeader("connection", "close");
      h1Responses.add(response);
      response.once("close", () => {
        h1Responses.delete(response);
        h1Busy.set(socket, (h1Busy.get(socket) ?? 1) - 1);
        endIfIdle(socket);
      });
    }
    if (options.extraRoutes?.(req, res as unknown as PlainResponse)) return;
    if (withCors) withCors(req as http.IncomingMessage, res as unknown as http.ServerResponse, () => handler(req, res));
    else handler(req, res);
  };
  const idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const h2 = http2.createServer(
    { streamResetBurst: STREAM_RESET_BURST, streamResetRate: STREAM_RESET_RATE },
    deferUntilNotReset(withRequestDeadline(serve, requestTimeoutMs)),
  );
  // Sessions and HTTP/1.1 sockets with no traffic either way are closed.
  h2.setTimeout(idleTimeoutMs);
  const h1 = http.createServer(
    {
      headersTimeout: requestTimeoutMs,
      requestTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, requestTimeoutMs / 4)),
    },
    serve,
  );
  h1.setTimeout(idleTimeoutMs);
  // headersTimeout and requestTimeout (a request trickled byte by byte) are enforced by a checker
  // that an http.Server starts when it begins listening; this one never listens itself (the front
  // server hands it sockets), so it is told it is.
  h1.emit("listening");
  const sockets = new Set<net.Socket>();
  /** Connections that have not sent their first byte: no HTTP server owns them yet. */
  const undecided = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    guardRapidReset(
      session,
      options.resetBurst ?? RESET_BURST,
      options.resetRatePerSecond ?? RESET_RATE_PER_SECOND,
      () => options.onConnectionClosed?.("HTTP/2 peer reset streams faster than allowed (GOAWAY ENHANCE_YOUR_CALM)"),
    );
  });
  const front = net.createServer((socket) => {
    sockets.add(socket);
    undecided.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      undecided.delete(socket);
    });
    // Until an HTTP server owns the socket nobody else listens for its errors, and an unheard
    // 'error' (a client or load-balancer probe resetting the connection) would end the process.
    socket.on("error", () => socket.destroy());
    const firstByteTimeout = setTimeout(() => socket.destroy(), options.firstByteTimeoutMs ?? FIRST_BYTE_TIMEOUT_MS);
    socket.once("close", () => clearTimeout(firstByteTimeout));
    // Bytes until they tell the protocol apart: an HTTP/1.1 "POST …" that arrives one byte at a
    // time starts like the HTTP/2 preface ("PRI * HTTP/2.0").
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const compared = Math.min(seen.length, HTTP2_PREFACE.length);
      const isHttp2 = seen.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
      if (isHttp2 && compared < HTTP2_PREFACE.length) return; // not decided yet
      socket.off("data", onData);
      clearTimeout(firstByteTimeout);
      undecided.delete(socket);
      socket.pause();
      socket.unshift(seen);
      if (isHttp2) {
        // The HTTP/2 session takes over the paused socket and reads the unshifted preface
        // first; resuming it here would hand those bytes to nobody and break the session.
        h2.emit("connection", socket);
      } else {
        h1Busy.set(socket, 0);
        socket.once("close", () => h1Busy.delete(socket));
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => resolve((front.address() as net.AddressInfo).port));
      });
    },
    async close() {
      closing = true;
      for (const response of h1Responses) if (!response.headersSent) response.setHeader("connection", "close");
      for (const socket of h1Busy.keys()) endIfIdle(socket);
      const closed = Promise.all([
        new Promise<void>((r) => front.close(() => r())),
        new Promise<void>((r) => h2.close(() => r())),
        new Promise<void>((r) => h1.close(() => r())),
      ]);
      // A connection that never sent a byte has no call to finish.
      for (const socket of undecided) socket.destroy();
      // h2.close() waits for open sessions: GOAWAY lets each finish its streams, then close.
      for (const session of sessions) session.close();
      await closed;
    },
    destroy() {
      for (const socket of sockets) socket.destroy();
    },
  };
}
