// AdminService over the generated types: each method validates its request, calls the command
// of the domain folder it changes and encodes the result. The admin-token check wraps them all.

import { AdminService } from "../../gen/concert/v1/admin_pb.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { behindAdminGate, type GateDeps } from "./admin-gate.js";
import { createAuditHandlers } from "./audit-handlers.js";
import { createCatalogHandlers, type CatalogDeps } from "./catalog-handlers.js";
import { createQueueAdminHandlers, type QueueAdminDeps } from "./queue-handlers.js";
import { createStatsHandlers } from "./stats-handlers.js";

export type AdminDeps = CatalogDeps & GateDeps & QueueAdminDeps;

export function createAdminHandlers(deps: AdminDeps): PartialServiceImpl<typeof AdminService> {
  const impl: PartialServiceImpl<typeof AdminService> = {
    ...createCatalogHandlers(deps),
    ...createAuditHandlers(deps),
    ...createQueueAdminHandlers(deps),
    ...createStatsHandlers(deps),
  };
  return behindAdminGate(AdminService, deps, impl);
}
