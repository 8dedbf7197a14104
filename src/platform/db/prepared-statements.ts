// Named prepared statements for the statements compiled once (compiled-query.ts). MikroORM sends
// a statement as text with its values inlined, which PostgreSQL parses, analyses and plans on
// every run; for the booking hot path's few statement shapes that is a large share of
// PostgreSQL's CPU. A compiled statement goes out instead with bound values under a name, which
// the pg driver prepares once per connection: PostgreSQL then skips the parse and analysis, and
// once its plan cache settles on a generic plan, the planning too.
//
// A registered text may stand for several statements run in order (a lock, then the read that
// must follow it): the driver sends each as its own prepared statement, all in one round trip
// (statement-folding.ts), and answers with the last one's result.

/** One prepared statement of a registered text. */
export interface PreparedPart {
  name: string;
  /** With `$1`, `$2`, … placeholders. */
  text: string;
  /** How many of the text's bound values are this statement's, in order. */
  params: number;
}

const byText = new Map<string, PreparedPart[]>();
const names = new Map<string, string>();

/**
 * Registers statements (SQL with `?` placeholders, run in this order with their values one after
 * the other) and returns the text to run them by, with all their values bound.
 */
export function prepareStatements(...sqls: string[]): string {
  const parts = sqls.map((sql): PreparedPart => {
    const { text, params } = numberPlaceholders(sql);
    let name = names.get(text);
    if (name === undefined) {
      name = `compiled_${names.size + 1}`;
      names.set(text, name);
    }
    return { name, text, params };
  });
  const key = parts.map((part) => part.text).join(";\n");
  byText.set(key, parts);
  return key;
}

/** The prepared statements a text was registered for, if it was. */
export const preparedParts = (text: string): PreparedPart[] | undefined => byText.get(text);

/**
 * `?` placeholders as PostgreSQL's `$1`, `$2`, …: those outside quoted literals and identifiers
 * (a `?` inside them is text). A statement compiled once has no other `?`.
 */
function numberPlaceholders(sql: string): { text: string; params: number } {
  let params = 0;
  let quote: string | undefined;
  let text = "";
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
      text += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      text += ch;
    } else text += ch === "?" ? `$${++params}` : ch;
  }
  return { text, params };
}
