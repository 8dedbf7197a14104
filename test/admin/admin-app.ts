// A test app that serves AdminService with known admin tokens, and clients that send them.

import { AdminService } from "../../gen/concert/v1/admin_pb.js";
import { parseAdminTokens } from "../../src/admin/admin-tokens.js";
import type { AppOptions } from "../../src/app.js";
import type { Config } from "../../src/config.js";
import type { GrpcCallOptions } from "../../src/platform/rpc/grpc-client.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

export const OPS_SECRET = "ops-secret-0123456789";
export const AUDITOR_SECRET = "auditor-secret-0123456789";

/** `authorization` metadata for a secret. */
export const bearer = (secret: string): GrpcCallOptions => ({ metadata: { authorization: `Bearer ${secret}` } });

export async function startAdminTestApp(
  label: string,
  overrides: Partial<Config> = {},
  options: AppOptions = {},
): Promise<TestApp> {
  const problems: string[] = [];
  const adminTokens = parseAdminTokens(`ops:${OPS_SECRET},auditor:${AUDITOR_SECRET}`, "", problems);
  if (problems.length > 0) throw new Error(problems.join("; "));
  return startTestApp(label, { adminTokens, ...overrides }, options);
}

export const adminClient = (app: TestApp) => app.grpc(AdminService);
