// bench/loadtest-cpu.sh attributes server CPU samples to RPCs by file and function name
// (bench/cpu-profile-rules.ts): these checks keep the rules in step with the code they name.

import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import {
  FILES_NAMED,
  FUNCTION_OWNERS,
  OTHER_KIND,
  isSocketWrite,
  kindOfStack,
  layerOfLeaf,
  type Frame,
} from "../../bench/cpu-profile-rules.js";

const ROOT = new URL("../../", import.meta.url);
const RESUMED = { file: "node:internal/process/task_queues", name: "processTicksAndRejections" };
const pg = (name: string, file = "node_modules/@mikro-orm/sql/AbstractSqlConnection.js"): Frame => ({ file, name });

test("every file the rules name exists, and the functions they name are still in it", (t) => {
  for (const file of FILES_NAMED) t.true(existsSync(new URL(file, ROOT)), file);
  for (const { file, names } of FUNCTION_OWNERS) {
    const source = readFileSync(new URL(file, ROOT), "utf8");
    for (const name of names) t.regex(source, new RegExp(`\\b${name}\\(`), `${name} in ${file}`);
  }
});

test("a handler, a command named like its RPC and a single-purpose file each claim the sample", (t) => {
  const handler = [
    { file: "src/platform/rpc/grpc-adapter.ts", name: "answer" },
    { file: "src/booking/booking-handlers.ts", name: "reserveSeat" },
  ];
  t.is(kindOfStack([...handler, pg("execute")]), "ReserveSeat");
  t.is(kindOfStack([RESUMED, { file: "src/wallet/wallet-ledger.ts", name: "topUp" }, pg("execute")]), "TopUp");
  t.is(kindOfStack([RESUMED, { file: "src/wallet/reservation-payment.ts", name: "(anonymous)" }]), "PayReservation");
  t.is(kindOfStack([RESUMED, { file: "src/queue/admission-loop.ts", name: "admitWaitingUsers" }]), "admission loop");
  t.is(kindOfStack([RESUMED, { file: "src/queue/waiting-room.ts", name: "join" }]), "JoinQueue");
});

test("without an owner, the layer decides, and the PostgreSQL client is split by what resumed", (t) => {
  const write = { file: "", name: "writeBuffer" };
  t.true(isSocketWrite(write));
  t.is(kindOfStack([RESUMED, pg("execute"), write]), "PostgreSQL client: socket writes (one per round trip)");
  t.is(
    kindOfStack([RESUMED, pg("commitUpdateChangeSets", "node_modules/@mikro-orm/core/unit-of-work/UnitOfWork.js")]),
    "PostgreSQL client: MikroORM unit of work (flush)",
  );
  t.is(
    kindOfStack([
      { file: "node:internal/stream_base_commons", name: "onStreamRead" },
      pg("parse", "node_modules/pg-protocol/dist/parser.js"),
    ]),
    "PostgreSQL client: pg driver (replies, pool)",
  );
  t.is(
    kindOfStack([{ file: "node_modules/@grpc/grpc-js/build/src/server.js", name: "onStream" }]),
    "gRPC transport (grpc-js, HTTP/2, protobuf-es)",
  );
  t.is(kindOfStack([{ file: "", name: "(garbage collector)" }]), "garbage collector");
  t.is(kindOfStack([RESUMED, { file: "", name: "runMicrotasks" }]), OTHER_KIND);
  t.is(layerOfLeaf(pg("execute")), "@mikro-orm/sql");
  t.is(layerOfLeaf({ file: "src/platform/db/orm.ts", name: "x" }), "src/platform/db");
});
