// AdminService over the generated types: each method validates its request, calls the command
// of the domain folder it changes and encodes the result. The admin-token check wraps them all.

import { Code, ConnectError } from "@connectrpc/connect";
import { AdminService } from "../../gen/concert/v1/admin_pb.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { behindAdminGate, type GateDeps } from "./admin-gate.js";
import { createAuditHandlers } from "./audit-handlers.js";
import { createCatalogHandlers, type CatalogDeps } from "./catalog-handlers.js";
import { createQueueAdminHandlers, type QueueAdminDeps } from "./queue-handlers.js";

export type AdminDeps = CatalogDeps & GateDeps & QueueAdminDeps;

const notYet = (name: string) => () => {
  throw new ConnectError(`AdminService.${name} is not implemented yet`, Code.Unimplemented);
};

export function createAdminHandlers(deps: AdminDeps): PartialServiceImpl<typeof AdminService> {
  const impl: Record<string, unknown> = {
    ...createCatalogHandlers(deps),
    ...createAuditHandlers(deps),
    ...createQueueAdminHandlers(deps),
  };
  for (const method of AdminService.methods) {
    impl[method.localName] ??=
      method.methodKind === "server_streaming"
        ? async function* () {
            yield* [];
            notYet(method.name)();
          }
        : notYet(method.name);
  }
  return behindAdminGate(AdminService, deps, impl as PartialServiceImpl<typeof AdminService>);
}
