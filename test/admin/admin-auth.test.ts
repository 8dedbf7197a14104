// AdminService is served on both ports and listed by reflection, and every call needs a
// configured admin secret; the user-facing services ask for none.

import { Code } from "@connectrpc/connect";
import test from "ava";
import { AdminService } from "../../gen/concert/v1/admin_pb.js";
import { BookingService } from "../../gen/concert/v1/booking_pb.js";
import { parseAdminTokens } from "../../src/admin/admin-tokens.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { expectError } from "../helpers/errors.js";
import { adminClient, bearer, OPS_SECRET, startAdminTestApp } from "./admin-app.js";
import { grpcurl } from "./grpcurl.js";

let app: TestApp;
let closed: TestApp;

test.before(async () => {
  [app, closed] = await Promise.all([
    startAdminTestApp("adminauth"),
    startTestApp("adminnotokens", { adminTokens: [] }),
  ]);
});

test.after.always(async () => {
  await Promise.all([app?.stop(), closed?.stop()]);
});

const probe = { concertId: "00000000-0000-4000-8000-000000000000" };

test("a call without a secret, or with a wrong one, is UNAUTHENTICATED / ADMIN_TOKEN_INVALID", async (t) => {
  const admin = adminClient(app);
  await expectError(t, admin.listSchedules(probe), Code.Unauthenticated, "ADMIN_TOKEN_INVALID");
  await expectError(
    t,
    admin.listSchedules(probe, bearer("not-the-secret-at-all")),
    Code.Unauthenticated,
    "ADMIN_TOKEN_INVALID",
  );
  await expectError(t, admin.listSchedules(probe, { metadata: { authorization: OPS_SECRET } }), Code.Unauthenticated);
  // The streaming method is gated before its first message.
  const stream = admin.watchQueueStats(probe);
  await expectError(
    t,
    (async () => {
      for await (const _ of stream) break;
    })(),
    Code.Unauthenticated,
    "ADMIN_TOKEN_INVALID",
  );
});

test("the same on the Connect port", async (t) => {
  const admin = app.connect(AdminService);
  await expectError(t, admin.listSchedules(probe), Code.Unauthenticated, "ADMIN_TOKEN_INVALID");
  const error = await t.throwsAsync(admin.listSchedules(probe, { headers: { authorization: `Bearer ${OPS_SECRET}` } }));
  t.not((error as { code?: Code }).code, Code.Unauthenticated);
});

test("a server without admin tokens refuses every admin call, saying so", async (t) => {
  const error = await expectError(
    t,
    adminClient(closed).listSchedules(probe, bearer(OPS_SECRET)),
    Code.Unauthenticated,
    "ADMIN_TOKEN_INVALID",
  );
  t.regex(error.message, /no admin tokens configured/);
});

test("user-facing services ask for no admin secret", async (t) => {
  const { concerts } = await app.grpc(BookingService).listConcerts({});
  t.deepEqual(concerts, []);
});

test("grpcurl finds AdminService by reflection and passes the secret as metadata", async (t) => {
  const listed = await grpcurl(["-plaintext", app.grpcAddress, "list"]);
  t.is(listed.code, 0, listed.stderr);
  t.true(listed.stdout.split("\n").includes("concert.v1.AdminService"));
  const refused = await grpcurl([
    "-plaintext",
    "-d",
    JSON.stringify(probe),
    app.grpcAddress,
    "concert.v1.AdminService/ListSchedules",
  ]);
  t.not(refused.code, 0);
  t.regex(refused.stderr, /Unauthenticated/);
  t.regex(refused.stderr, /ADMIN_TOKEN_INVALID/);
  const allowed = await grpcurl([
    "-plaintext",
    "-H",
    `authorization: Bearer ${OPS_SECRET}`,
    "-d",
    JSON.stringify(probe),
    app.grpcAddress,
    "concert.v1.AdminService/ListSchedules",
  ]);
  t.notRegex(allowed.stderr, /Unauthenticated/);
});

test("ADMIN_TOKENS parsing never echoes a secret", (t) => {
  const problems: string[] = [];
  const tokens = parseAdminTokens("ops:short,ops2:long-enough-secret-1,ops2:long-enough-secret-2", "", problems);
  t.deepEqual(
    tokens.map((token) => token.name),
    ["ops2"],
  );
  t.is(problems.length, 2);
  for (const problem of problems) t.false(/short|long-enough/.test(problem), problem);
});
