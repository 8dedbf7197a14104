// The real grpcurl (GRPCURL, else PATH; a test without it fails saying how to provide it).

import { execFile } from "node:child_process";
import { findTool } from "../helpers/tools.js";

export interface GrpcurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const findGrpcurl = () =>
  findTool(
    "grpcurl",
    "GRPCURL",
    "https://github.com/fullstorydev/grpcurl/releases; our machines have ../shared/bin/grpcurl",
  );

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
