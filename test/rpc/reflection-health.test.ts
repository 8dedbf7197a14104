// grpcurl-style access: reflection (v1 and v1alpha) and health through `buf curl`, plus raw
// reflection requests from a grpc-js client for the answers a tool's version may depend on.

import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import test from "ava";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { testAppFixture } from "../helpers/app.js";

const run = promisify(execFile);
const fixture = testAppFixture("reflection", {}, 10);

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run("buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    timeout: 30_000,
  });
  return stdout;
}

const url = (path: string) => `http://${fixture.app.grpcAddress}/${path}`;

for (const reflectProtocol of ["grpc-v1", "grpc-v1alpha"]) {
  test(`reflection ${reflectProtocol} lists every service`, async (t) => {
    const services = (await bufCurl("--reflect-protocol", reflectProtocol, "--list-services", url("")))
      .trim()
      .split("\n")
      .sort();
    t.deepEqual(services, [
      "concert.v1.AdminService",
      "concert.v1.BookingService",
      "concert.v1.QueueService",
      "concert.v1.WalletService",
      "grpc.health.v1.Health",
    ]);
  });

  test(`reflection ${reflectProtocol} resolves methods so calls work without proto files`, async (t) => {
    const out = JSON.parse(
      await bufCurl("--reflect-protocol", reflectProtocol, "-d", "{}", url("concert.v1.BookingService/ListConcerts")),
    ) as {
      concerts: { id: string }[];
    };
    t.is(out.concerts.length, 1);
    const methods = (await bufCurl("--reflect-protocol", reflectProtocol, "--list-methods", url("")))
      .trim()
      .split("\n");
    t.true(methods.includes("concert.v1.WalletService/PayReservation"));
    t.true(methods.includes("concert.v1.QueueService/WatchQueue"));
  });
}

test("health reports SERVING overall and per service", async (t) => {
  for (const service of ["", "concert.v1.QueueService", "concert.v1.BookingService", "concert.v1.WalletService"]) {
    const out = JSON.parse(await bufCurl("-d", JSON.stringify({ service }), url("grpc.health.v1.Health/Check"))) as {
      status: string;
    };
    t.is(out.status, "SERVING", service || "overall");
  }
});

test("errors reach buf curl as grpc-status-details-bin with an ErrorInfo reason", async (t) => {
  // JoinQueue needs no queue token, so the request reaches validation.
  const error = await t.throwsAsync<Error & { stdout: string; stderr: string }>(
    bufCurl("-d", '{"concertId":"nope","userId":"u"}', url("concert.v1.QueueService/JoinQueue")),
  );
  const printed = JSON.parse(error.stderr || error.stdout) as {
    code: string;
    details: { type: string; value: string }[];
  };
  t.is(printed.code, "invalid_argument");
  const info = printed.details.find((d) => d.type === "google.rpc.ErrorInfo");
  t.truthy(info);
  const decoded = fromBinary(ErrorInfoSchema, Buffer.from(info!.value, "base64"));
  t.is(decoded.reason, "INVALID_FIELD");
  t.is(decoded.domain, "concert.v1");
  t.truthy(printed.details.find((d) => d.type === "google.rpc.BadRequest"));
});

interface ReflectionAnswer {
  messageResponse: string;
  allExtensionNumbersResponse?: { baseTypeName: string; extensionNumber: number[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** Sends one raw ServerReflectionInfo request over `version` and returns the one answer. */
async function reflect(version: "v1" | "v1alpha", request: object): Promise<ReflectionAnswer> {
  const packageDir = dirname(createRequire(import.meta.url).resolve("@grpc/reflection/package.json"));
  const definition = protoLoader.loadSync(join(packageDir, `build/proto/grpc/reflection/${version}/reflection.proto`), {
    oneofs: true,
    arrays: true,
  });
  const service = definition[`grpc.reflection.${version}.ServerReflection`] as protoLoader.ServiceDefinition;
  const method = service.ServerReflectionInfo!;
  const client = new grpc.Client(fixture.app.grpcAddress, grpc.credentials.createInsecure());
  try {
    const stream = client.makeBidiStreamRequest<object, ReflectionAnswer>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize as (bytes: Buffer) => ReflectionAnswer,
      new grpc.Metadata(),
      { deadline: Date.now() + 30_000 },
    );
    const answer = new Promise<ReflectionAnswer>((resolve, reject) => {
      stream.once("data", resolve);
      stream.once("error", reject);
    });
    stream.write(request);
    stream.end();
    return await answer;
  } finally {
    client.close();
  }
}

for (const version of ["v1", "v1alpha"] as const) {
  test(`reflection ${version} lists no extension numbers for message types without extensions`, async (t) => {
    // grpcurl <= 1.8.7 asks this for the Any in error details and prints them as base64 when refused.
    for (const type of ["google.rpc.ErrorInfo", "google.rpc.BadRequest", "concert.v1.JoinQueueRequest"]) {
      const answer = await reflect(version, { allExtensionNumbersOfType: type });
      t.is(answer.messageResponse, "allExtensionNumbersResponse", type);
      t.deepEqual(answer.allExtensionNumbersResponse, { baseTypeName: type, extensionNumber: [] });
    }
  });

  test(`reflection ${version} still answers NOT_FOUND for a type it does not know`, async (t) => {
    const answer = await reflect(version, { allExtensionNumbersOfType: "concert.v1.NoSuchMessage" });
    t.is(answer.messageResponse, "errorResponse");
    t.is(answer.errorResponse?.errorCode, grpc.status.NOT_FOUND);
  });
}
