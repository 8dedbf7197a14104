// Browsers on another origin reach the Connect port only through CORS: preflights answered with
// the protocols' methods and headers (plus x-queue-token), calls carrying the allow and expose
// headers, over HTTP/1.1 and HTTP/2 alike; other origins, and every origin when CORS_ORIGINS is
// empty, get no CORS headers at all.

import test from "ava";
import http2 from "node:http2";
import { startTestApp, type TestApp } from "../helpers/app.js";

const ALLOWED = "https://tickets.example";
let app: TestApp;
let plain: TestApp;

test.before(async () => {
  [app, plain] = await Promise.all([
    startTestApp("rpc_cors", { corsOrigins: [ALLOWED, "http://localhost:5173"] }),
    startTestApp("rpc_cors_off"),
  ]);
});

test.after.always(async () => {
  await Promise.all([app?.stop(), plain?.stop()]);
});

const PREFLIGHT = {
  "access-control-request-method": "POST",
  "access-control-request-headers": "content-type,connect-protocol-version,x-queue-token",
};

function preflight(target: TestApp, origin: string): Promise<Response> {
  return fetch(`${target.connectUrl}/concert.v1.BookingService/ListConcerts`, {
    method: "OPTIONS",
    headers: { origin, ...PREFLIGHT },
  });
}

function listConcerts(target: TestApp, origin: string): Promise<Response> {
  return fetch(`${target.connectUrl}/concert.v1.BookingService/ListConcerts`, {
    method: "POST",
    headers: { origin, "content-type": "application/json", "connect-protocol-version": "1" },
    body: "{}",
  });
}

test("a preflight from an allowed origin is answered with the protocols' methods and headers", async (t) => {
  const response = await preflight(app, ALLOWED);
  t.is(response.status, 204);
  t.is(response.headers.get("access-control-allow-origin"), ALLOWED);
  t.deepEqual(response.headers.get("access-control-allow-methods")?.split(","), ["POST", "GET"]);
  const allowed = response.headers.get("access-control-allow-headers")!.toLowerCase().split(",");
  for (const header of [
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "x-grpc-web",
    "grpc-timeout",
    "x-queue-token",
  ]) {
    t.true(allowed.includes(header), `${header} in ${allowed.join(",")}`);
  }
  t.is(response.headers.get("access-control-max-age"), "7200");
  t.regex(response.headers.get("vary") ?? "", /origin/i);
});

test("a call from an allowed origin carries the allow and expose headers", async (t) => {
  const response = await listConcerts(app, "http://localhost:5173");
  t.is(response.status, 200);
  t.is(response.headers.get("access-control-allow-origin"), "http://localhost:5173");
  const exposed = response.headers.get("access-control-expose-headers")!.toLowerCase();
  for (const header of ["grpc-status", "grpc-message", "grpc-status-details-bin"])
    t.true(exposed.includes(header), exposed);
  t.deepEqual(await response.json(), {});
});

test("another origin gets no CORS headers, so its browser refuses the answer", async (t) => {
  for (const response of [
    await preflight(app, "https://evil.example"),
    await listConcerts(app, "https://evil.example"),
  ]) {
    t.is(response.headers.get("access-control-allow-origin"), null);
  }
});

test("GET /metrics carries no CORS headers, whatever the origin", async (t) => {
  const response = await fetch(`${app.connectUrl}/metrics`, { headers: { origin: ALLOWED } });
  t.is(response.status, 200);
  t.is(response.headers.get("access-control-allow-origin"), null);
  await response.text();
});

test("without CORS_ORIGINS no origin is allowed, and calls still work", async (t) => {
  t.is((await preflight(plain, ALLOWED)).headers.get("access-control-allow-origin"), null);
  const response = await listConcerts(plain, ALLOWED);
  t.is(response.status, 200);
  t.is(response.headers.get("access-control-allow-origin"), null);
});

test("gRPC-Web over HTTP/2 gets the same preflight answer", async (t) => {
  const session = http2.connect(app.connectUrl);
  try {
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const stream = session.request({
        ":method": "OPTIONS",
        ":path": "/concert.v1.BookingService/ListConcerts",
        origin: ALLOWED,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web,x-user-agent",
      });
      stream.once("response", resolve);
      stream.once("error", reject);
      stream.resume();
      stream.end();
    });
    t.is(Number(headers[":status"]), 204);
    t.is(headers["access-control-allow-origin"], ALLOWED);
    t.regex(String(headers["access-control-allow-headers"]), /x-grpc-web/i);
  } finally {
    session.close();
  }
});
