// Server reflection (v1 and v1alpha) from @grpc/reflection, fed the descriptor set from `buf build`,
// with one answer corrected: "all extension numbers of type X" for a known message type.

import { createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { readFileSync } from "node:fs";

const DESCRIPTOR_SET = new URL("../../../gen/descriptors.binpb", import.meta.url);

/** The fields of a reflection response (proto-loader object, oneofs as names) that the correction reads. */
interface ReflectionResponse {
  validHost?: string;
  originalRequest?: { messageRequest?: string; allExtensionNumbersOfType?: string };
}

/**
 * The descriptor set as ReflectionService input. proto-loader's own loader round-trips it through
 * protobuf.js, which merges all concert.v1 files into one and drops their imports, so grpcurl and
 * buf curl could list services but not call them. ReflectionService only reads
 * `fileDescriptorProtos`, so the original files are passed through untouched.
 */
function reflectionPackage(set: FileDescriptorSet): PackageDefinition {
  const fileDescriptorProtos = set.file.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
  return { "buf.build.descriptors": { fileDescriptorProtos } } as unknown as PackageDefinition;
}

/** Every message type of the set with the field numbers of the extensions declared for it (mostly none). */
function extensionNumbersByMessage(set: FileDescriptorSet): Map<string, number[]> {
  const registry = createFileRegistry(set);
  const numbers = new Map<string, number[]>();
  for (const type of registry) if (type.kind === "message") numbers.set(type.typeName, []);
  for (const type of registry) if (type.kind === "extension") numbers.get(type.extendee.typeName)?.push(type.number);
  return numbers;
}

/**
 * @grpc/reflection answers NOT_FOUND for a type that no extension extends, where the protocol wants
 * an empty list. grpcurl up to 1.8.7 asks this for every Any it meets and, refused, prints error
 * details as undecoded base64; so a known message type gets its (usually empty) list instead.
 */
function answerExtensionQuery(response: ReflectionResponse, numbers: Map<string, number[]>): ReflectionResponse {
  const request = response.originalRequest;
  if (request?.messageRequest !== "allExtensionNumbersOfType") return response;
  const typeName = request.allExtensionNumbersOfType ?? "";
  const extensionNumber = numbers.get(typeName);
  if (!extensionNumber) return response;
  return {
    validHost: response.validHost,
    originalRequest: request,
    allExtensionNumbersResponse: { baseTypeName: typeName, extensionNumber },
  } as ReflectionResponse;
}

/** Adds reflection for `services` (and every type their files use) to a grpc-js server. */
export function addReflectionService(server: Pick<grpc.Server, "addService">, services: readonly string[]): void {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTOR_SET));
  const numbers = extensionNumbersByMessage(set);
  // The correction sits in the response serializer of each version's definition, so the library's
  // handler, stream handling and every other answer stay as they are.
  new ReflectionService(reflectionPackage(set), { services: [...services] }).addToServer({
    addService(definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) {
      const info = definition.ServerReflectionInfo as grpc.MethodDefinition<unknown, ReflectionResponse>;
      const corrected: grpc.MethodDefinition<unknown, ReflectionResponse> = {
        ...info,
        responseSerialize: (response) => info.responseSerialize(answerExtensionQuery(response, numbers)),
      };
      server.addService({ ...definition, ServerReflectionInfo: corrected }, impl);
    },
  });
}
