// Cross-cutting call handling shared by both transports, applied to a service implementation
// once per transport: guards (the queue-token check), the open-stream cap, error mapping and call
// metrics. Doing it here rather than as connect interceptors keeps the grpc-js adapter and
// connect-node on exactly the same path.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { onAbort } from "../abort-listeners.js";
import { DomainError, OverloadedError } from "../domain-error.js";
import { toConnectError } from "./error-mapping.js";
import { IN_FLIGHT_RETRY_MS, type InFlightLimit } from "./in-flight-limit.js";
import type { RpcMetrics } from "./metrics.js";

/** Runs before a method; throws to reject the call. */
export type CallGuard = (request: unknown, context: HandlerContext) => Promise<void> | void;

export interface WrapOptions {
  transport: "grpc" | "connect";
  /** The guards a method runs before its handler (the queue-token check its table declares). */
  guardsOf: (method: DescMethod) => readonly CallGuard[];
  /** Open server streams allowed at once on this transport. */
  maxOpenStreams: number;
  /** The service's bound on unary calls answered at once, shared by both transports. */
  inFlight?: InFlightLimit;
  metrics: RpcMetrics;
  /** Aborted at shutdown: open streams end with UNAVAILABLE so clients reconnect elsewhere. */
  shutdownSignal: AbortSignal;
  /**
   * Deadline of a unary call whose client set none (DEFAULT_DEADLINE_MS). The grpc-js adapter
   * enforces deadlines itself. connect-node only aborts the handler's signal when the client's
   * timeout passes and answers whenever the handler returns (a transaction waiting for a row
   * lock does not listen), so on the Connect port this wrapper enforces both: the default, and
   * the client's timeout for unary calls and streams alike.
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

const STOPPED = Symbol("stopped");

/**
 * Yields from `stream` until it ends or `stop` fires (shutdown, or a deadline), then throws
 * `stopError()`. Racing each next() against `stop` ends a stream at once even while its handler
 * is waiting for the next update.
 */
async function* untilStopped<T>(
  stream: AsyncIterable<T>,
  stop: AbortSignal,
  stopError: () => Error,
): AsyncGenerator<T> {
  const iterator = stream[Symbol.asyncIterator]();
  // One fresh promise per next(): Promise.race against one long-lived stop promise would add
  // a reaction to it per message that is never released, so the heap would grow per message.
  let wake: ((value: typeof STOPPED) => void) | undefined;
  // The shutdown signal is shared by every open stream: a plain listener per stream costs O(streams).
  const forget = onAbort(stop, () => wake?.(STOPPED));
  try {
    for (;;) {
      const next = stop.aborted
        ? STOPPED
        : await new Promise<IteratorResult<T> | typeof STOPPED>((resolve, reject) => {
            wake = resolve;
            iterator.next().then(resolve, reject);
          });
      wake = undefined;
      if (next === STOPPED) throw stopError();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    forget();
    void iterator.return?.();
  }
}

/**
 * Runs a unary handler under a deadline: at `deadlineMs` the call fails with DEADLINE_EXCEEDED
 * and the handler's signal aborts, so work that listens to it stops; a transaction already
 * running finishes or rolls back on its own, as when a client's own deadline passes.
 */
async function withDeadline(
  handler: AnyUnary,
  request: unknown,
  context: HandlerContext,
  deadlineMs: number,
  clientSet: boolean,
): Promise<unknown> {
  const deadline = Date.now() + deadlineMs;
  const expired = new AbortController();
  const signal = AbortSignal.any([context.signal, expired.signal]);
  const scoped = new Proxy(context, {
    get: (target, key) =>
      key === "signal"
        ? signal
        : key === "timeoutMs"
          ? () => Math.max(deadline - Date.now(), 0)
          : Reflect.get(target, key, target),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      handler(request, scoped),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = clientSet
            ? deadlineExceeded()
            : new ConnectError(
                `no answer within the server's default deadline of ${deadlineMs} ms`,
                Code.DeadlineExceeded,
              );
          expired.abort(error);
          reject(error);
        }, deadlineMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const deadlineExceeded = () => new ConnectError("deadline exceeded", Code.DeadlineExceeded);
const shuttingDown = () => new DomainError("UNAVAILABLE", "the server is shutting down; reconnect to resume");
const clientGone = () => new ConnectError("the client cancelled the call", Code.Canceled);

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
    const guards = options.guardsOf(method);
    const runGuards = async (request: unknown, context: HandlerContext) => {
      for (const guard of guards) await guard(request, context);
    };
    if (typeof fn !== "function") {
      const unimplemented = new ConnectError(
        `${service.typeName}.${method.name} is not implemented yet`,
        Code.Unimplemented,
      );
      wrapped[method.localName] =
        method.methodKind === "server_streaming"
          ? // eslint-disable-next-line require-yield -- a stream that fails at its first read
            async function* () {
              throw unimplemented;
            }
          : () => {
              throw unimplemented;
            };
      continue;
    }
    if (method.methodKind === "unary") {
      const handler = fn.bind(impl) as AnyUnary;
      wrapped[method.localName] = async (request: unknown, context: HandlerContext) => {
        const started = performance.now();
        const { inFlight } = options;
        if (inFlight && !inFlight.tryEnter()) return fail(inFlight.refusal(), started);
        try {
          if (guards.length > 0) await runGuards(request, context);
          const timeoutMs = context.timeoutMs();
          const response = await (options.transport === "grpc" && timeoutMs !== undefined
            ? handler(request, context)
            : withDeadline(handler, request, context, timeoutMs ?? options.defaultDeadlineMs, timeoutMs !== undefined));
          options.metrics.observe(label, "OK", started);
          return response;
        } catch (error) {
          return fail(error, started);
        } finally {
          inFlight?.leave();
        }
      };
    } else if (method.methodKind === "server_streaming") {
      const handler = fn.bind(impl) as AnyStreaming;
      wrapped[method.localName] = async function* (request: unknown, context: HandlerContext) {
        const started = performance.now();
        if (streams.open >= options.maxOpenStreams) {
          fail(
            new OverloadedError(
              `this server holds its limit of ${options.maxOpenStreams} open streams; retry after the delay given`,
              IN_FLIGHT_RETRY_MS * (1 + Math.random()),
            ),
            started,
          );
        }
        streams.open++;
        options.metrics.streamsOpen.inc(label);
        // On the Connect port the call's own signal fires at the client's deadline (reason
        // DEADLINE_EXCEEDED) or when the client goes away; the grpc-js adapter ends such streams itself.
        const stop =
          options.transport === "connect"
            ? AbortSignal.any([options.shutdownSignal, context.signal])
            : options.shutdownSignal;
        const timedOut = () =>
          context.signal.aborted && ConnectError.from(context.signal.reason).code === Code.DeadlineExceeded;
        try {
          await runGuards(request, context);
          yield* untilStopped(handler(request, streamContext(context, stop)), stop, () =>
            options.shutdownSignal.aborted ? shuttingDown() : timedOut() ? deadlineExceeded() : clientGone(),
          );
          // The handler may notice the signal first and just end: a stream cut by its deadline
          // must still say so, not end as if it were done.
          if (timedOut()) throw deadlineExceeded();
          options.metrics.observe(label, "OK", started);
        } catch (error) {
          // The client went away: nobody reads an answer, and a failed write after the cancel
          // is no bug of ours.
          if (context.signal.aborted && !options.shutdownSignal.aborted && !timedOut()) {
            options.metrics.observe(label, "Canceled", started);
            return;
          }
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
