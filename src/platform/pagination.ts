// Opaque, tamper-evident-enough page tokens: base64url JSON of the keyset position plus the
// request's filter, so a token is refused when reused with another filter (AIP-158).

import type { RequestCheck } from "./validation.js";

export interface Page<K> {
  size: number;
  /** Keyset position after which the page starts; undefined for the first page. */
  after: K | undefined;
}

export function encodePageToken(filter: string, after: unknown): string {
  return Buffer.from(JSON.stringify({ f: filter, a: after })).toString("base64url");
}

/**
 * Parses page_size and page_token. `isKey` validates the decoded keyset position; a token that
 * fails to decode, belongs to another filter or holds a malformed key is an INVALID_FIELD.
 */
export function readPage<K>(
  checker: RequestCheck,
  request: { pageSize: number; pageToken: string },
  options: { filter: string; defaultSize: number; maxSize: number; isKey: (value: unknown) => value is K },
): Page<K> {
  const { pageSize, pageToken } = request;
  let size = options.defaultSize;
  if (pageSize < 0 || pageSize > options.maxSize) {
    checker.fail("page_size", `must be between 0 and ${options.maxSize}`);
  } else if (pageSize > 0) {
    size = pageSize;
  }
  if (pageToken === "") return { size, after: undefined };
  try {
    if (pageToken.length > 512) throw new Error("too long");
    const decoded = JSON.parse(Buffer.from(pageToken, "base64url").toString("utf8")) as { f?: unknown; a?: unknown };
    if (decoded.f !== options.filter || !options.isKey(decoded.a)) throw new Error("mismatch");
    return { size, after: decoded.a };
  } catch {
    checker.fail("page_token", "is not a token returned by this call with these arguments");
    return { size, after: undefined };
  }
}
