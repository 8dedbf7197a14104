// The audit log of AdminService: written after each call that changes something (the change's
// outcome known), read back newest first. Requests are stored without secrets: the admin secret
// travels in metadata, never in a request, and a user's queue token is cut to a prefix.

import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import { toJson } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { ORM } from "../platform/db/orm.js";
import type { Page } from "../platform/pagination.js";
import { toConnectError } from "../platform/rpc/error-mapping.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminAction } from "./admin-action.entity.js";

/** Methods that change something: the AIP verbs Create, Update, Remove. */
export const isMutation = (method: DescMethod): boolean => /^(Create|Update|Remove)/.test(method.name);

const QUEUE_TOKEN_SHOWN = 8;

/** The request as JSON, with every `token` field cut to its first characters. */
export function auditedRequest(schema: DescMessage, request: unknown): JsonObject {
  const json = toJson(schema, request as never) as JsonObject;
  if (typeof json.token === "string") json.token = `${json.token.slice(0, QUEUE_TOKEN_SHOWN)}…`;
  return json;
}

export interface AuditEntry {
  tokenName: string;
  method: DescMethod;
  concertId: string | undefined;
  request: JsonObject;
  error: unknown;
}

/** Outcome and reason of a call as its caller saw them. */
function outcomeOf(error: unknown): { outcome: string; errorReason: string | null } {
  if (error === undefined) return { outcome: "OK", errorReason: null };
  const connectError = toConnectError(error, () => undefined);
  const outcome = Code[connectError.code]!.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  return { outcome, errorReason: connectError.findDetails(ErrorInfoSchema)[0]?.reason ?? null };
}

export async function recordAdminAction(orm: ORM, entry: AuditEntry): Promise<void> {
  await orm.em.fork().insert(AdminAction, {
    tokenName: entry.tokenName,
    method: `${entry.method.parent.typeName}/${entry.method.name}`,
    concertId: entry.concertId ?? null,
    request: entry.request,
    ...outcomeOf(entry.error),
  });
}

export async function listAdminActions(
  orm: ORM,
  concertId: string | undefined,
  page: Page<string>,
): Promise<{ items: AdminAction[]; hasMore: boolean }> {
  const where = {
    ...(concertId ? { concertId } : {}),
    ...(page.after ? { id: { $lt: page.after } } : {}),
  };
  const rows = await orm.em.fork().find(AdminAction, where, {
    orderBy: { id: "desc" },
    limit: page.size + 1,
    disableIdentityMap: true,
  });
  return { items: rows.slice(0, page.size), hasMore: rows.length > page.size };
}
