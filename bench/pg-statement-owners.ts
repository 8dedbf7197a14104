// Preloaded into the server by bench/loadtest-cpu.sh (`node --import`): which RPC each statement
// the pg driver sends is for. Every grpc-js handler runs inside an AsyncLocalStorage that holds
// its RPC name, which follows the call through every await and promise, also into MikroORM
// (the CPU profile's stacks end at the resumed MikroORM code). Every query counts for that RPC;
// one outside any call (a timer's task) counts for the owner the rules in
// bench/cpu-profile-rules.ts find on V8's async stack trace. One known misattribution: a query
// that pg-pool starts from its wait-queue callback runs in the context of the call that freed
// the connection. SIGUSR2 starts counting; a second SIGUSR2 writes the counts as JSON to
// $STATEMENT_OWNERS_OUT and stops.
//
//   STATEMENT_OWNERS_OUT=FILE node --import tsx --import ./bench/pg-statement-owners.ts src/main.ts

import * as grpc from "@grpc/grpc-js";
import { AsyncLocalStorage } from "node:async_hooks";
import { writeFileSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { BACKGROUND_KINDS, kindOfStack, type Frame } from "./cpu-profile-rules.js";

const out = process.env.STATEMENT_OWNERS_OUT;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NO_OWNER = "outside any RPC, no background task on the async stack";

/** The current synchronous and async stack, outermost first, as the rules name frames. */
function currentStack(): Frame[] {
  const { prepareStackTrace, stackTraceLimit } = Error;
  Error.prepareStackTrace = (_error, sites) => sites;
  Error.stackTraceLimit = 60;
  try {
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, currentStack);
    const sites = holder.stack as NodeJS.CallSite[];
    return sites.reverse().map((site) => {
      const url = site.getFileName() ?? "";
      const file = url.startsWith("file://") ? relative(ROOT, fileURLToPath(url)) : url;
      return { file, name: site.getFunctionName() ?? site.getMethodName() ?? "(anonymous)" };
    });
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}

const BACKGROUND: ReadonlySet<string> = new Set(BACKGROUND_KINDS);
const rpcOfCall = new AsyncLocalStorage<string>();

type Handler = (this: unknown, ...args: unknown[]) => unknown;
type Register = (name: string, handler: Handler, ...rest: unknown[]) => boolean;

if (out) {
  const register = grpc.Server.prototype.register as unknown as Register;
  (grpc.Server.prototype as unknown as { register: Register }).register = function (
    this: grpc.Server,
    name,
    handler,
    ...rest
  ) {
    const rpc = name.slice(name.lastIndexOf("/") + 1);
    const inCall: Handler = function (...args) {
      return rpcOfCall.run(rpc, () => handler.apply(this, args));
    };
    return register.call(this, name, inCall, ...rest);
  };

  let counting = false;
  const owners = new Map<string, number>();
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as { query: (...args: unknown[]) => unknown }).query = function (
    this: pg.Client,
    ...args: unknown[]
  ) {
    if (counting) {
      let owner = rpcOfCall.getStore();
      if (owner === undefined) {
        const kind = kindOfStack(currentStack());
        owner = BACKGROUND.has(kind) ? kind : NO_OWNER;
      }
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
    }
    return query.apply(this, args);
  };
  process.on("SIGUSR2", () => {
    if (!counting) {
      counting = true;
      return;
    }
    counting = false;
    writeFileSync(out, JSON.stringify(Object.fromEntries(owners)));
  });
}
