// The real grpcurl, found by GRPCURL or on PATH; a test that needs it fails saying how to provide it.

import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export function findGrpcurl(): string {
  const candidates = process.env.GRPCURL
    ? [process.env.GRPCURL]
    : (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "grpcurl"));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next one
    }
  }
  throw new Error(
    "grpcurl not found: set GRPCURL=/path/to/grpcurl or put it on PATH (CI uses ../shared/bin/grpcurl, v1.9.1)",
  );
}

export interface GrpcurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs grpcurl with `args`; resolves with its exit code and output whether it failed or not. */
export function grpcurl(args: string[]): Promise<GrpcurlResult> {
  const binary = findGrpcurl();
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
