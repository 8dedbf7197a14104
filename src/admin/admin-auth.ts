// Who may call AdminService: a caller whose `authorization: Bearer <secret>` names a configured
// admin token. Never open by default: with no tokens configured, nobody.

import type { HandlerContext } from "@connectrpc/connect";
import { DomainError } from "../platform/domain-error.js";
import { findAdminToken, type AdminToken } from "./admin-tokens.js";

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
  return token;
}
