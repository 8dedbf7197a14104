// Admin tokens: parsed from ADMIN_TOKENS or ADMIN_TOKENS_FILE at start, kept only as SHA-256
// digests, and checked in constant time. No message here ever contains a secret.

import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export interface AdminToken {
  /** Shown in the audit log in place of the secret. */
  name: string;
  secretSha256: Buffer;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const SECRET = /^[\x21-\x7e]{16,256}$/;

const digest = (secret: string): Buffer => createHash("sha256").update(secret, "utf8").digest();

/**
 * Parses `name:secret` entries (comma- or newline-separated). Problems are appended to
 * `problems` naming the variable and the entry's position, never its text.
 */
export function parseAdminTokens(inline: string, file: string, problems: string[]): AdminToken[] {
  if (inline !== "" && file !== "") {
    problems.push("ADMIN_TOKENS and ADMIN_TOKENS_FILE are both set: set one of them");
    return [];
  }
  let source = "ADMIN_TOKENS";
  let text = inline;
  if (file !== "") {
    source = "ADMIN_TOKENS_FILE";
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      problems.push(`ADMIN_TOKENS_FILE=${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
      return [];
    }
  }
  const entries = text
    .split(/[,\n]/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const tokens: AdminToken[] = [];
  entries.forEach((entry, index) => {
    const colon = entry.indexOf(":");
    const name = entry.slice(0, colon);
    const secret = entry.slice(colon + 1);
    if (colon < 0 || !NAME.test(name) || !SECRET.test(secret)) {
      problems.push(
        `${source} entry ${index + 1} must be name:secret (name 1-64 of A-Z a-z 0-9 . _ -, secret 16-256 printable characters without spaces)`,
      );
    } else if (tokens.some((t) => t.name === name)) {
      problems.push(`${source} names ${name} twice`);
    } else {
      tokens.push({ name, secretSha256: digest(secret) });
    }
  });
  return tokens;
}

/**
 * The token whose secret the `authorization: Bearer <secret>` header carries, or undefined.
 * Every configured token is compared (digests of equal length, timingSafeEqual), so the time
 * taken tells nothing about which one matched or how much of a secret was right.
 */
export function findAdminToken(tokens: readonly AdminToken[], authorization: string | null): AdminToken | undefined {
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(authorization?.trim() ?? "");
  if (!match) return undefined;
  const presented = digest(match[1]!);
  let found: AdminToken | undefined;
  for (const token of tokens) if (timingSafeEqual(token.secretSha256, presented)) found ??= token;
  return found;
}
