// Command-line tools that users bring (grpcurl, ghz, jq), found the way users have them: an
// environment variable naming the binary, else PATH (.ci/run adds ../shared/bin). A missing tool
// fails the test with a message saying how to provide it, never skips it.

import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * The executable named by `process.env[envName]`, else `name` on PATH.
 * `install` tells where to get it when neither is there.
 */
export function findTool(name: string, envName: string | undefined, install: string): string {
  const fromEnv = envName ? process.env[envName] : undefined;
  const candidates = fromEnv ? [fromEnv] : (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  const how = envName ? `set ${envName}=/path/to/${name} or put ${name} on PATH` : `put ${name} on PATH`;
  throw new Error(
    fromEnv
      ? `${envName}=${fromEnv} is not an executable file; ${how} (${install})`
      : `${name} not found: ${how} (${install})`,
  );
}
