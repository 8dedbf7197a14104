// AdminService.ListAdminActions: the audit log, newest first, optionally for one concert.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AdminService } from "../../gen/concert/v1/admin_pb.js";
import type { ORM } from "../platform/db/orm.js";
import { encodePageToken, readPage } from "../platform/pagination.js";
import type { PartialServiceImpl } from "../platform/rpc/service-wrapper.js";
import { check, isInt8String } from "../platform/validation.js";
import { listAdminActions } from "./audit-log.js";

export function createAuditHandlers({ orm }: { orm: ORM }): PartialServiceImpl<typeof AdminService> {
  return {
    async listAdminActions(request) {
      const checker = check();
      if (request.concertId !== "") checker.uuid("concert_id", request.concertId);
      const filter = `admin-actions:${request.concertId}`;
      const page = readPage(checker, request, { filter, defaultSize: 50, maxSize: 500, isKey: isInt8String });
      checker.throwIfInvalid();
      const { items, hasMore } = await listAdminActions(orm, request.concertId || undefined, page);
      return {
        actions: items.map((action) => ({
          id: action.id,
          createTime: timestampFromDate(action.createdAt),
          tokenName: action.tokenName,
          method: action.method,
          concertId: action.concertId ?? "",
          request: action.request as never,
          outcome: action.outcome,
          errorReason: action.errorReason ?? "",
        })),
        nextPageToken: hasMore ? encodePageToken(filter, items.at(-1)!.id) : "",
      };
    },
  };
}
