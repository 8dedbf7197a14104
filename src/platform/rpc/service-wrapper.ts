// Cross-cutting call handling shared by both transports, applied to a service implementation
// once per transport: guards (the queue-token check), the open-stream cap, error mapping and call
// metrics. Doing it here rather than as connect interceptors keeps the grpc-js adapter and
// connect-node on exactly the same path.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { DomainError } from "../domain-error.js";
import { toConnectError } from "./error-mapping.js";
import type { RpcMetrics } from "./metrics.js";

/** Runs before a method; throws to reject the call. */
export type CallGuard = (request: unknown, context: HandlerContext) => Promise<void> | void;

export interface WrapOptions {
  transport: "grpc" | "connect";
  guards: readonly CallGuard[];
  /** Open server streams allowed at once on this transport. */
  maxOpenStreams: number;
  metrics: RpcMetrics;
  /** Aborted at shutdown: open streams end with UNAVAILABLE so clients reconnect elsewhere. */
  shutdownSignal: AbortSignal;
  /**
   * Deadline of a unary call whose client set none (DEFAULT_DEADLINE_MS). The grpc-js adapter
   * applies it itself; connect-node applies only the client's timeout, so this wrapper does.
   */
  defaultDeadlineMs: number;
  onBug: (error: unknown, method: DescMethod) => void;
}

type AnyUnary = (request: unknown, context: HandlerContext) => Promise<unknown> | unknown;
type AnyStreaming = (request: unknown, context: HandlerContext) => AsyncIterable<unknown>;

export type PartialServiceImpl<S extends DescService> = Partial<ServiceImpl<S>>;

export interface StreamCounter {
  open: number;
}

/** The handler's context with a signal that also fires at shutdown, so the handler stops waiting. */
function streamContext(context: HandlerContext, shutdownSignal: AbortSignal): HandlerContext {
  const signal = AbortSignal.any([context.signal, shutdownSignal]);
  return new Proxy(context, { get: (target, key) => (key === "signal" ? signal : Reflect.get(target, key, target)) });
}

const SHUT_DOWN = Symbol("shutdown");

/**
 * Yields from `stream` until it ends or the server shuts down. Racing each next() against the
 * shutdown ends a stream at once even while its handler is waiting for the next update.
 */
async function* untilShutdown<T>(stream: AsyncIterable<T>, shutdownSignal: AbortSignal): AsyncGenerator<T> {
  const iterator = stream[Symbol.asyncIterator]();
  // One fresh promise per next(): Promise.race against one long-lived shutdown promise would add
  // a reaction to it per message that is never released (the heap grew ~0.8 KB per message).
  let wake: ((value: typeof SHUT_DOWN) => void) | undefined;
  const onShutdown = () => wake?.(SHUT_DOWN);
  shutdownSignal.addEventListener("abort", onShutdown, { once: true });
  try {
    for (;;) {
      const next = shutdownSignal.aborted
        ? SHUT_DOWN
        : await new Promise<IteratorResult<T> | typeof SHUT_DOWN>((resolve, reject) => {
            wake = resolve;
            iterator.next().then(resolve, reject);
          });
      wake = undefined;
      if (next === SHUT_DOWN) throw new DomainError("UNAVAILABLE", "the server is shutting down; reconnect to resume");
      if (next.done) return;
      yield next.value;
    }
  } finally {
    shutdownSignal.removeEventListener("abort", onShutdown);
    void iterator.return?.();
  }
}

/**
 * Runs a unary handler under a deadline: at `deadlineMs` the call fails with DEADLINE_EXCEEDED
 * and the handler's signal aborts, so work that listens to it stops; a transaction already
 * running finishes or rolls back on its own, as when a client's own deadline passes.
 */
async function withDeadline(handler: AnyUnary, request: unknown, context: HandlerContext, deadlineMs: number): Promise<unknown> {
  const deadline = Date.now() + deadlineMs;
  const expired = new AbortController();
  const signal = AbortSignal.any([context.signal, expired.signal]);
  const scoped = new Proxy(context, {
    get: (target, key) => (key === "signal" ? signal : key === "timeoutMs" ? () => Math.max(deadline - Date.now(), 0) : Reflect.get(target, key, target)),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      handler(request, scoped),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new ConnectError(`no answer within the server's default deadline of ${deadlineMs} ms`, Code.DeadlineExceeded);
          expired.abort(error);
          reject(error);
        }, deadlineMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function wrapService<S extends DescService>(
  service: S,
  impl: PartialServiceImpl<S>,
  options: WrapOptions,
  streams: StreamCounter = { open: 0 },
): ServiceImpl<S> {
  const wrapped: Record<string, unknown> = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, unknown>)[method.localName];
    const label = { transport: options.transport, method: `${service.name}/${method.name}` };
    const fail = (error: unknown, started: number): never => {
      const connectError = toConnectError(error, (bug) => options.onBug(bug, method));
      options.metrics.observe(label, Code[connectError.code], started);
      throw connectError;
    };
    const runGuards = async (request: unknown, context: HandlerContext) => {
      for (const guard of options.guards) await guard(request, context);
    };
    if (typeof fn !== "function") {
      const unimplemented = new ConnectError(`${service.typeName}.${method.name} is not implemented yet`, Code.Unimplemented);
      wrapped[method.localName] =
        method.methodKind === "server_streaming"
          ? async function* () { throw unimplemented; } // eslint-disable-line require-yield
          : () => { throw unimplemented; };
      continue;
    }
    if (method.methodKind === "unary") {
      const handler = fn.bind(impl) as AnyUnary;
      wrapped[method.localName] = async (request: unknown, context: HandlerContext) => {
        const started = performance.now();
        try {
          if (options.guards.length > 0) await runGuards(request, context);
          const response = await (context.timeoutMs() === undefined ? withDeadline(handler, request, context, options.defaultDeadlineMs) : handler(request, context));
          options.metrics.observe(label, "OK", started);
          return response;
        } catch (error) {
          return fail(error, started);
        }
      };
    } else if (method.methodKind === "server_streaming") {
      const handler = fn.bind(impl) as AnyStreaming;
      wrapped[method.localName] = async function* (request: unknown, context: HandlerContext) {
        const started = performance.now();
        if (streams.open >= options.maxOpenStreams) {
          fail(new DomainError("OVERLOADED", `this server holds its limit of ${options.maxOpenStreams} open streams; retry with backoff`), started);
        }
        streams.open++;
        options.metrics.streamsOpen.inc(label);
        try {
          await runGuards(request, context);
          yield* untilShutdown(handler(request, streamContext(context, options.shutdownSignal)), options.shutdownSignal);
          options.metrics.observe(label, "OK", started);
        } catch (error) {
          fail(error, started);
        } finally {
          streams.open--;
          options.metrics.streamsOpen.dec(label);
        }
      };
    } else {
      throw new Error(`${method.methodKind} methods are not part of the contract`);
    }
  }
  return wrapped as ServiceImpl<S>;
}
