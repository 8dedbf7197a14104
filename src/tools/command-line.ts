// The command lines of the `npm run` tools, handled one way: `--help` (or -h) prints the usage on
// stdout and exits 0; anything parseArgs refuses is one line on stderr pointing at --help, exit 2.

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { CONFIG_VARIABLES } from "../config.js";

/** Refuses the command line: what is wrong, where the options are listed, exit status 2. */
export function usageError(tool: string, message: string): never {
  process.stderr.write(`${tool}: ${message}; \`npm run ${tool} -- --help\` lists the options\n`);
  process.exit(2);
}

const HELP = { help: { type: "boolean", short: "h", default: false } } as const;
type CommandLine<O extends ParseArgsOptionsConfig> = {
  args: string[];
  options: O & typeof HELP;
  strict: true;
  allowPositionals: false;
};
type Values<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<CommandLine<O>>>["values"];

/** Parses process.argv (no positionals); prints `usage` and exits 0 on --help. */
export function parseCommandLine<O extends ParseArgsOptionsConfig>(tool: string, usage: string, options: O): Values<O> {
  let values: Values<O>;
  try {
    ({ values } = parseArgs<CommandLine<O>>({
      args: process.argv.slice(2),
      options: { ...options, ...HELP },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usageError(tool, (error as Error).message);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(usage.endsWith("\n") ? usage : `${usage}\n`);
    process.exit(0);
  }
  return values;
}

/**
 * The "environment" section of a usage text: these variables as src/config.ts documents them,
 * after `others` (variables of this tool alone, with their description).
 */
export function environmentHelp(names: readonly string[], others: Record<string, string> = {}): string {
  const entries = Object.entries(others);
  for (const name of names) {
    const variable = CONFIG_VARIABLES.find((v) => v.name === name);
    if (!variable) throw new Error(`${name} is not a documented variable`);
    const fallback = variable.defaultValue === "" ? "" : ` (default ${variable.defaultValue})`;
    entries.push([name, `${variable.description}${fallback}`]);
  }
  const width = Math.max(14, ...entries.map(([name]) => name.length)) + 2; // the options' column
  return ["environment", ...entries.map(([name, text]) => `  ${name.padEnd(width)}${text}`)].join("\n");
}
