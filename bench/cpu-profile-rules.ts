// Which work a stack frame of the server belongs to, for bench/cpu-profile-summary.ts. A frame is
// named by its TypeScript file (relative to the repository) and function; for the `handle`
// methods of a method table (src/*/…-handlers.ts), by the table key above it (`reserveSeat`).
// Kept as one table so that a renamed function shows up as unattributed time, not as a crash.

import { BookingService } from "../gen/concert/v1/booking_pb.js";
import { QueueService } from "../gen/concert/v1/queue_pb.js";
import { WalletService } from "../gen/concert/v1/wallet_pb.js";
import { AdminService } from "../gen/concert/v1/admin_pb.js";

export interface Frame {
  /** Repository-relative TypeScript path for project code, the script URL otherwise, "" for V8 nodes. */
  file: string;
  /** Function name; a method-table key for `handle` methods. */
  name: string;
}

/** RPC local name (`reserveSeat`) → RPC name (`ReserveSeat`), from the generated descriptors. */
const RPC_BY_LOCAL_NAME = new Map(
  [QueueService, BookingService, WalletService, AdminService].flatMap((service) =>
    service.methods.map((method) => [method.localName, method.name] as const),
  ),
);

/** Functions that serve one RPC but are not named like it (the waiting room's verbs). */
export const FUNCTION_OWNERS: readonly { file: string; names: readonly string[]; kind: string }[] = [
  { file: "src/queue/waiting-room.ts", names: ["join"], kind: "JoinQueue" },
  { file: "src/queue/join-checks.ts", names: ["requireConcert"], kind: "JoinQueue" },
  { file: "src/queue/waiting-room.ts", names: ["watch"], kind: "WatchQueue" },
  { file: "src/queue/waiting-room.ts", names: ["status"], kind: "GetQueueStatus" },
  { file: "src/queue/waiting-room.ts", names: ["leave"], kind: "LeaveQueue" },
  { file: "src/queue/waiting-room.ts", names: ["release"], kind: "PayReservation" },
  {
    file: "src/wallet/reservation-payment.ts",
    names: ["payInTransaction", "findPaymentReplay"],
    kind: "PayReservation",
  },
];

/** Files whose code serves one RPC or one background task only: they claim continuations after an await. */
const FILE_OWNERS: readonly { file: string; kind: string }[] = [
  { file: "src/queue/join-committer.ts", kind: "JoinQueue" },
  { file: "src/queue/join-recheck.ts", kind: "JoinQueue" },
  { file: "src/queue/queue-token.ts", kind: "JoinQueue" },
  { file: "src/queue/watch-hub.ts", kind: "WatchQueue" },
  { file: "src/booking/seat-hold.ts", kind: "ReserveSeat" },
  { file: "src/wallet/reservation-payment.ts", kind: "PayReservation" },
  { file: "src/queue/admission-loop.ts", kind: "admission loop" },
  { file: "src/platform/db/outbox-relay.ts", kind: "outbox relay" },
  { file: "src/booking/hold-sweeper.ts", kind: "hold sweeper" },
];

const PG_CLIENT = /(^|\/)node_modules\/(@mikro-orm|kysely|pg|pg-protocol|pg-pool|pg-types)\//;
/** Native functions that copy a write into the kernel: on loopback TCP the kernel's send path runs here too. */
const SOCKET_WRITES = new Set(["writeBuffer", "writev", "writeUtf8String", "writeLatin1String", "writeAsciiString"]);

const PG_PARTS = {
  writes: "PostgreSQL client: socket writes (one per round trip)",
  driver: "PostgreSQL client: pg driver (replies, pool)",
  flush: "PostgreSQL client: MikroORM unit of work (flush)",
  queries: "PostgreSQL client: MikroORM queries (find, nativeUpdate, QueryBuilder)",
  execute: "PostgreSQL client: MikroORM/kysely connection, transaction, execute",
};

export const isSocketWrite = (frame: Frame) => frame.file === "" && SOCKET_WRITES.has(frame.name);

/** The PostgreSQL client's share, split by the outermost library frame (what the await resumed). */
function postgresClientPart(stack: readonly Frame[]): string {
  if (isSocketWrite(stack.at(-1)!)) return PG_PARTS.writes;
  const outer = stack.find((f) => PG_CLIENT.test(f.file))!;
  if (/node_modules\/pg(-protocol|-pool|-types)?\//.test(outer.file)) return PG_PARTS.driver;
  if (outer.file.includes("@mikro-orm/core/unit-of-work/")) return PG_PARTS.flush;
  if (/@mikro-orm\/(core\/EntityManager|sql\/AbstractSqlDriver|sql\/query\/)/.test(outer.file)) return PG_PARTS.queries;
  return PG_PARTS.execute;
}

/**
 * What a sample with no owner above is doing, by the code on its stack: the first entry that
 * any frame matches; `part` splits an entry further.
 */
const LAYERS: readonly { kind: string; test: (frame: Frame) => boolean; part?: (stack: readonly Frame[]) => string }[] =
  [
    {
      kind: "token check (queue-token guard)",
      test: (f) => f.file === "src/queue/queue-token-guard.ts" || f.file === "src/booking/admission.ts",
    },
    { kind: "PostgreSQL client", test: (f) => PG_CLIENT.test(f.file), part: postgresClientPart },
    { kind: "Redis client (ioredis)", test: (f) => /(^|\/)node_modules\/(ioredis|@ioredis)\//.test(f.file) },
    {
      kind: "RPC layer (src/platform/rpc: adapter, wrapper, errors)",
      test: (f) => f.file.startsWith("src/platform/rpc/"),
    },
    {
      kind: "gRPC transport (grpc-js, HTTP/2, protobuf-es)",
      test: (f) =>
        /(^|\/)node_modules\/(@grpc|@bufbuild|@connectrpc)\//.test(f.file) || /^node:internal\/http2/.test(f.file),
    },
    { kind: "other server code (src/)", test: (f) => f.file.startsWith("src/") },
  ];

export const SPECIAL_KINDS: Record<string, string> = {
  "(garbage collector)": "garbage collector",
  "(program)": "native code outside JS (program)",
  "(idle)": "idle",
};

export const OTHER_KIND = "other: promise machinery (runMicrotasks), stream reads, timers";

function ownerOf(frame: Frame): string | undefined {
  if (!frame.file.startsWith("src/")) return undefined;
  const rpc = RPC_BY_LOCAL_NAME.get(frame.name);
  if (rpc) return rpc;
  const named = FUNCTION_OWNERS.find((o) => o.file === frame.file && o.names.includes(frame.name));
  if (named) return named.kind;
  return FILE_OWNERS.find((o) => o.file === frame.file)?.kind;
}

/**
 * The kind of one sample, from its stack (root first): the outermost frame that belongs to an
 * RPC or a background task decides; with none, the first layer any frame belongs to.
 */
export function kindOfStack(stack: readonly Frame[]): string {
  const leaf = stack.at(-1);
  if (leaf && leaf.file === "" && SPECIAL_KINDS[leaf.name]) return SPECIAL_KINDS[leaf.name]!;
  for (const frame of stack) {
    const owner = ownerOf(frame);
    if (owner) return owner;
  }
  const layer = LAYERS.find((l) => stack.some(l.test));
  if (!layer) return OTHER_KIND;
  return layer.part ? layer.part(stack) : layer.kind;
}

/** Every kind an RPC can have, so that the table lists them in a fixed order. */
export const RPC_NAMES: ReadonlySet<string> = new Set(RPC_BY_LOCAL_NAME.values());
export const BACKGROUND_KINDS = ["admission loop", "outbox relay", "hold sweeper"] as const;
/** Every project file the rules name, so a test can tell when one was moved or renamed. */
export const FILES_NAMED = [
  ...new Set([...FUNCTION_OWNERS, ...FILE_OWNERS].map((o) => o.file)),
  "src/queue/queue-token-guard.ts",
  "src/booking/admission.ts",
];
export const POSTGRES_CLIENT_KINDS = Object.values(PG_PARTS);
export const LAYER_KINDS = LAYERS.flatMap((l) => (l.part ? Object.values(PG_PARTS) : [l.kind]));

/** The package or project folder a leaf frame's code lives in, for the self-time-by-layer table. */
export function layerOfLeaf(frame: Frame): string {
  if (frame.file === "") return SPECIAL_KINDS[frame.name] ?? `native: ${frame.name || "(anonymous)"}`;
  if (frame.file.startsWith("src/"))
    return frame.file
      .split("/")
      .slice(0, frame.file.startsWith("src/platform/") ? 3 : 2)
      .join("/");
  const pkg = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(frame.file)?.[1];
  if (pkg) return pkg;
  if (frame.file.startsWith("node:")) return "Node internals (node:*)";
  return "other";
}
