// Reads environment variables by name, with the documented default for an empty one, and collects
// every problem so that one ConfigError names them all instead of failing on the first.

import { CONFIG_VARIABLES } from "./config-variables.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export type Env = Record<string, string | undefined>;

export function createEnvReader(env: Env) {
  const problems: string[] = [];
  const raw = (name: string): string => {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return value.trim();
    const known = CONFIG_VARIABLES.find((v) => v.name === name);
    if (!known) throw new Error(`undocumented variable ${name}`);
    return known.defaultValue;
  };
  const integer = (name: string, min: number, max: number): number => {
    const text = raw(name);
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      problems.push(`${name}=${text} must be an integer from ${min} to ${max}`);
      return min;
    }
    return value;
  };
  /** DATABASE_URL: a postgres URL that names its database (pg would quietly pick the user's name, MikroORM refuses none). */
  const databaseUrl = (): string => {
    const before = problems.length;
    const text = url("DATABASE_URL", ["postgres:", "postgresql:"]);
    if (problems.length > before) return text; // one complaint per variable
    const path = decodeURIComponent(new URL(text).pathname).replace(/^\//, "");
    if (path === "" || path.includes("/"))
      problems.push(`DATABASE_URL=${text} must name a database, as in postgres://user@host:5432/dbname`);
    return text;
  };
  const url = (name: string, protocols: string[]): string => {
    const text = raw(name);
    try {
      const parsed = new URL(text);
      if (!protocols.includes(parsed.protocol)) throw new Error("protocol");
    } catch {
      problems.push(`${name}=${text} must be a ${protocols.map((p) => `${p}//`).join(" or ")} URL`);
    }
    return text;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T => {
    const text = raw(name).toLowerCase();
    if (!(allowed as readonly string[]).includes(text)) {
      problems.push(`${name}=${text} must be one of ${allowed.join(", ")}`);
      return allowed[0]!;
    }
    return text as T;
  };
  const bool = (name: string): boolean => oneOf(name, ["true", "false", "1", "0"]) in { true: 1, 1: 1 };
  const hostPorts = (name: string): { host: string; port: number }[] => {
    const text = raw(name);
    const nodes: { host: string; port: number }[] = [];
    for (const entry of text
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)) {
      const match = /^\[?([^\s/[\]]+?)\]?:(\d{1,5})$/.exec(entry); // also [IPv6]:port
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        problems.push(`${name}=${text} must be a comma-separated list of host:port`);
        return [];
      }
      nodes.push({ host: match[1]!, port });
    }
    return nodes;
  };
  /** A comma-separated list of web origins (scheme://host[:port], as browsers send them), or "*". */
  const origins = (name: string): string[] => {
    const text = raw(name);
    const list = text
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length === 1 && list[0] === "*") return list;
    const bad = list.filter((entry) => {
      try {
        const url = new URL(entry);
        return !["http:", "https:"].includes(url.protocol) || url.origin !== entry;
      } catch {
        return true;
      }
    });
    if (bad.length > 0)
      problems.push(
        `${name}=${text} must be * or a comma-separated list of origins like https://app.example.com (no path, no trailing slash): ${bad.join(", ")}`,
      );
    return bad.length > 0 ? [] : list;
  };
  /** Throws one ConfigError naming every problem found so far. */
  const throwIfProblems = () => {
    if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  };
  return { raw, integer, url, databaseUrl, oneOf, bool, hostPorts, origins, problems, throwIfProblems };
}
