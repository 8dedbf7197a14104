// The bound of an RPC call as its database work needs it (platform/db/call-bound.ts): the
// handler context's signal, which both transports abort at the deadline and on a client cancel,
// and the deadline itself, from the time left when the handler starts.

import type { HandlerContext } from "@connectrpc/connect";
import type { CallBound } from "../db/call-bound.js";

export function callBoundOf(context: HandlerContext): CallBound {
  const timeoutMs = context.timeoutMs();
  return { signal: context.signal, deadlineAt: timeoutMs === undefined ? undefined : Date.now() + timeoutMs };
}
