// The container's health check (docker-compose.yml): asks the server's own gRPC health service
// for the overall status, on PORT over loopback, with the image's node; the image has no grpcurl.
// Exit 0 when SERVING; 1 otherwise (NOT_SERVING while PostgreSQL is unreachable, no answer),
// with one line saying why, which `docker inspect` shows.

import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { ConfigError, loadConfig } from "../config.js";

/** Below compose's healthcheck timeout, so a hung server fails the check rather than the check timing out. */
const DEADLINE_MS = 3000;

function fail(message: string): never {
  process.stderr.write(`healthcheck: ${message}\n`);
  process.exit(1);
}

let config;
try {
  config = loadConfig();
} catch (error) {
  fail(error instanceof ConfigError ? error.message : String(error));
}
if (config.port === 0) fail("PORT=0 picks a free port at random: the health check needs a fixed PORT");
// The server binds HOST; an any-address bind is reached over loopback.
const host = ["0.0.0.0", "::", ""].includes(config.host) ? "127.0.0.1" : config.host;
const address = host.includes(":") ? `[${host}]:${config.port}` : `${host}:${config.port}`;

const Health = grpc.makeClientConstructor(healthService as grpc.ServiceDefinition, "grpc.health.v1.Health");
const client = new Health(address, grpc.credentials.createInsecure());
const check = client["Check"] as (
  request: { service: string },
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
) => void;
check.call(client, { service: "" }, { deadline: Date.now() + DEADLINE_MS }, (error, response) => {
  client.close();
  if (error) fail(`no answer from ${address} (${error.details || error.message})`);
  if (response?.status !== "SERVING") fail(`${address} is ${response?.status ?? "in an unknown state"}`);
  process.stdout.write(`healthcheck: ${address} is SERVING\n`);
  process.exit(0);
});
