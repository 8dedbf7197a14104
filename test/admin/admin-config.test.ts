// ADMIN_TOKENS / ADMIN_TOKENS_FILE as loadConfig reads them: parsed, validated, never echoed.

import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findAdminToken } from "../../src/admin/admin-tokens.js";
import { ConfigError, loadConfig } from "../../src/config.js";

test("no admin tokens by default; admin is among the default services", (t) => {
  const config = loadConfig({});
  t.deepEqual(config.adminTokens, []);
  t.true(config.services.includes("admin"));
});

test("ADMIN_TOKENS holds name:secret pairs, kept as digests only", (t) => {
  const config = loadConfig({ ADMIN_TOKENS: "ops:first-secret-0123456, oncall:second-secret-0123456" });
  t.deepEqual(
    config.adminTokens.map((token) => token.name),
    ["ops", "oncall"],
  );
  t.false(JSON.stringify(config).includes("first-secret"));
  t.is(findAdminToken(config.adminTokens, "Bearer second-secret-0123456")?.name, "oncall");
  t.is(findAdminToken(config.adminTokens, "Bearer second-secret-012345"), undefined);
  t.is(findAdminToken(config.adminTokens, "second-secret-0123456"), undefined);
  t.is(findAdminToken(config.adminTokens, null), undefined);
});

test("ADMIN_TOKENS_FILE holds one pair a line, with comments", (t) => {
  const file = join(mkdtempSync(join(tmpdir(), "admin-tokens-")), "tokens");
  writeFileSync(file, "# operators\nops:file-secret-0123456789\n\nrelease:other-secret-0123456789\n");
  const config = loadConfig({ ADMIN_TOKENS_FILE: file });
  t.deepEqual(
    config.adminTokens.map((token) => token.name),
    ["ops", "release"],
  );
});

test("bad admin tokens stop the start with a message that holds no secret", (t) => {
  const error = t.throws(() => loadConfig({ ADMIN_TOKENS: "ops:tooshort,:nameless-secret-0123456" }), {
    instanceOf: ConfigError,
  });
  t.regex(error!.message, /ADMIN_TOKENS entry 1/);
  t.regex(error!.message, /ADMIN_TOKENS entry 2/);
  t.false(/tooshort|nameless-secret/.test(error!.message));
  t.throws(() => loadConfig({ ADMIN_TOKENS: "ops:first-secret-0123456", ADMIN_TOKENS_FILE: "/x" }), {
    message: /both set/,
  });
  t.throws(() => loadConfig({ ADMIN_TOKENS_FILE: "/nonexistent/admin-tokens" }), { message: /cannot be read/ });
});
