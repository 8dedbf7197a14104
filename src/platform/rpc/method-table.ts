// Each RPC method declares, next to its handler, what it asks of the caller's queue token. The
// wrapper runs the guards of that declaration; a method without one is refused at start-up, so
// a new method cannot end up unguarded by omission.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { PartialServiceImpl } from "./service-wrapper.js";

/**
 * What a method asks of the caller's queue token (metadata x-queue-token):
 * - "none": nothing, anyone may call it;
 * - "active": an ACTIVE token, which the handler then finds in its context;
 * - "active-or-used": the same, or a token an earlier call used up, with which the handler may
 *   only replay that call's result (an idempotent retry after the first call released the slot).
 */
export type TokenRequirement = "none" | "active" | "active-or-used";

const REQUIREMENTS: readonly string[] = ["none", "active", "active-or-used"] satisfies TokenRequirement[];

/** One method: its handler and, beside it, its token requirement. */
export interface MethodEntry<H> {
  token: TokenRequirement;
  handle: H;
}

/** A service's handlers, one entry for every method of the proto service. */
export type MethodTable<S extends DescService> = {
  [K in keyof ServiceImpl<S>]: MethodEntry<ServiceImpl<S>[K]>;
};

export interface BoundService<S extends DescService> {
  service: S;
  impl: PartialServiceImpl<S>;
  tokenOf(method: DescMethod): TokenRequirement;
}

/**
 * Checks that every method of `service` has an entry with a handler and a token requirement,
 * and returns the handlers with a lookup of the requirements. Throws naming the first method
 * that lacks one: the process must not serve it.
 */
export function bindMethodTable<S extends DescService>(service: S, table: MethodTable<S>): BoundService<S> {
  const entries = table as Record<string, Partial<MethodEntry<unknown>> | undefined>;
  const impl: Record<string, unknown> = {};
  const tokens = new Map<string, TokenRequirement>();
  for (const method of service.methods) {
    const entry = entries[method.localName];
    const where = `${service.typeName}.${method.name}`;
    if (!entry || !REQUIREMENTS.includes(entry.token as string)) {
      throw new Error(
        `${where} declares no queue-token requirement: give its entry in the handler table ` +
          `token: "none", "active" or "active-or-used"`,
      );
    }
    if (typeof entry.handle !== "function") throw new Error(`${where} has no handler in its handler table`);
    impl[method.localName] = entry.handle;
    tokens.set(method.localName, entry.token as TokenRequirement);
  }
  const unknown = Object.keys(entries).filter((name) => !service.methods.some((m) => m.localName === name));
  if (unknown.length > 0) throw new Error(`${service.typeName} has no method ${unknown.join(", ")}`);
  return { service, impl: impl as PartialServiceImpl<S>, tokenOf: (method) => tokens.get(method.localName)! };
}

/** A table in which every method of `impl` asks the same, for a service whose methods all do. */
export function sameForEveryMethod<S extends DescService>(
  impl: PartialServiceImpl<S>,
  token: TokenRequirement,
): MethodTable<S> {
  const entries = Object.entries(impl).map(([name, handle]) => [name, { token, handle }]);
  return Object.fromEntries(entries) as MethodTable<S>;
}
