// Around every AdminService method: the admin-token check first (streaming methods check before
// their first message), then, for calls that change something, the audit log entry with the
// call's outcome. An entry that cannot be written fails the call with UNAVAILABLE: every admin
// mutation is idempotent, so the operator's retry both finds the change done and records it.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { ORM } from "../platform/db/orm.js";
import { UnavailableError } from "../platform/domain-error.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { isUuid } from "../platform/validation.js";
import { requireAdminToken } from "./admin-auth.js";
import type { AdminToken } from "./admin-tokens.js";
import { auditedRequest, isMutation, recordAdminAction } from "./audit-log.js";

export interface GateDeps {
  adminTokens: readonly AdminToken[];
  orm: ORM;
}

type Unary = (request: unknown, context: HandlerContext) => Promise<unknown>;
type Streaming = (request: unknown, context: HandlerContext) => AsyncIterable<unknown>;
type Loose = Record<string, unknown> & {
  concert?: { id?: string };
  settings?: { concertId?: string };
  schedule?: { concertId?: string };
  status?: { concertId?: string };
};

/** The concert a call concerned, from its request, its answer or, for a schedule, the database. */
async function concertOfCall(orm: ORM, request: Loose, response: Loose | undefined): Promise<string | undefined> {
  const known = [
    request.concertId,
    request.concert?.id,
    request.settings?.concertId,
    response?.concert?.id,
    response?.schedule?.concertId,
    response?.status?.concertId,
  ].find((id): id is string => isUuid(id));
  if (known || !isUuid(request.scheduleId)) return known;
  const [row] = await orm.em
    .fork()
    .execute<{ concert_id: string }[]>("select concert_id from schedule where id = ?", [request.scheduleId]);
  return row?.concert_id;
}

async function runAudited(
  method: DescMethod,
  handler: Unary,
  orm: ORM,
  caller: AdminToken,
  request: unknown,
  context: HandlerContext,
): Promise<unknown> {
  let response: unknown;
  let error: unknown;
  try {
    response = await handler(request, context);
  } catch (thrown) {
    error = thrown;
  }
  try {
    await recordAdminAction(orm, {
      tokenName: caller.name,
      method,
      concertId: await concertOfCall(orm, request as Loose, response as Loose | undefined),
      request: auditedRequest(method.input, request),
      error,
    });
  } catch (auditFailure) {
    throw new UnavailableError("the change could not be recorded in the audit log; retry the call", {
      cause: auditFailure,
    });
  }
  if (error !== undefined) throw error;
  return response;
}

/** Every method of `impl` behind the admin check, the mutations also audited. */
export function behindAdminGate<S extends DescService>(
  service: S,
  deps: GateDeps,
  impl: PartialServiceImpl<S>,
): PartialServiceImpl<S> {
  const gated: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, unknown>)[method.localName];
    if (typeof handler !== "function") continue;
    if (method.methodKind === "server_streaming") {
      gated[method.localName] = async function* (request: unknown, context: HandlerContext) {
        requireAdminToken(deps.adminTokens, context);
        yield* (handler as Streaming)(request, context);
      };
      continue;
    }
    const mutation = isMutation(method);
    gated[method.localName] = async (request: unknown, context: HandlerContext) => {
      const caller = requireAdminToken(deps.adminTokens, context);
      return mutation
        ? runAudited(method, handler as Unary, deps.orm, caller, request, context)
        : (handler as Unary)(request, context);
    };
  }
  return gated as PartialServiceImpl<S>;
}
