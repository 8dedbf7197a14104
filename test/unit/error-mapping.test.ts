// Store failures become UNAVAILABLE (clients retry), a transaction PostgreSQL aborted for a conflict
// CONCURRENT_UPDATE (ABORTED, safe to retry); anything unrecognised is INTERNAL (a bug).

import { Code } from "@connectrpc/connect";
import test from "ava";
import { isConnectivityError, toConnectError } from "../../src/platform/rpc/error-mapping.js";
import { errorReason } from "../helpers/errors.js";

// What pg says about a connection that dropped, at the statement that meets it and at the next one.
const PG_DROPS = [
  "Connection terminated unexpectedly",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
];

test("pg's dropped-connection errors, also wrapped by the ORM, are UNAVAILABLE", (t) => {
  for (const message of PG_DROPS) {
    t.true(isConnectivityError(new Error(message)), message);
    t.true(isConnectivityError(new Error("DriverException", { cause: new Error(message) })), `wrapped: ${message}`);
    t.is(toConnectError(new Error(message), () => t.fail(`${message} taken for a bug`)).code, Code.Unavailable);
  }
});

test("a deadlock or serialization failure, also wrapped by the ORM, is ABORTED with CONCURRENT_UPDATE, not a bug", (t) => {
  for (const code of ["40P01", "40001"]) {
    const pgError = Object.assign(new Error("deadlock detected"), { code });
    for (const error of [pgError, new Error("DriverException", { cause: pgError })]) {
      const mapped = toConnectError(error, () => t.fail(`${code} taken for a bug`));
      t.is(Code[mapped.code], Code[Code.Aborted], code);
      t.is(errorReason(mapped), "CONCURRENT_UPDATE", code);
      t.false(isConnectivityError(error), "not a store outage: the mode stays");
    }
  }
});

test("an unrecognised error is INTERNAL and reported as a bug", (t) => {
  let bugs = 0;
  t.is(toConnectError(new TypeError("undefined is not a function"), () => bugs++).code, Code.Internal);
  t.is(bugs, 1);
});
