// The AdminService gate: every method, unary or streaming, runs only for a caller whose
// `authorization: Bearer <secret>` names a configured admin token. Never open by default.

import type { DescService } from "@bufbuild/protobuf";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../platform/domain-error.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { findAdminToken, type AdminToken } from "./admin-tokens.js";

/** The admin token a call was authenticated with, for the handlers and the audit log. */
export const ADMIN_CALLER = createContextKey<AdminToken | undefined>(undefined, { description: "admin caller" });

export function requireAdminToken(tokens: readonly AdminToken[], context: HandlerContext): AdminToken {
  if (tokens.length === 0)
    throw new DomainError(
      "ADMIN_TOKEN_INVALID",
      "this server has no admin tokens configured (ADMIN_TOKENS or ADMIN_TOKENS_FILE), so it refuses every admin call",
    );
  const token = findAdminToken(tokens, context.requestHeader.get("authorization"));
  if (!token)
    throw new DomainError(
      "ADMIN_TOKEN_INVALID",
      "admin calls need metadata 'authorization: Bearer <secret>' with a configured admin secret",
    );
  context.values.set(ADMIN_CALLER, token);
  return token;
}

type Unary = (request: unknown, context: HandlerContext) => Promise<unknown>;
type Streaming = (request: unknown, context: HandlerContext) => AsyncIterable<unknown>;

/** Every method of `impl` behind the admin check; the streaming ones check before their first message. */
export function behindAdminTokens<S extends DescService>(
  service: S,
  tokens: readonly AdminToken[],
  impl: PartialServiceImpl<S>,
): PartialServiceImpl<S> {
  const guarded: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, unknown>)[method.localName];
    if (typeof handler !== "function") continue;
    guarded[method.localName] =
      method.methodKind === "server_streaming"
        ? async function* (request: unknown, context: HandlerContext) {
            requireAdminToken(tokens, context);
            yield* (handler as Streaming)(request, context);
          }
        : async (request: unknown, context: HandlerContext) => {
            requireAdminToken(tokens, context);
            return (handler as Unary)(request, context);
          };
  }
  return guarded as PartialServiceImpl<S>;
}
