// Lint rules for the whole repository. Prettier owns the layout, so no rule here is about formatting;
// each group says why it is here. Type-aware rules (no-floating-promises and the like) are left out:
// they make ESLint build the whole TypeScript program again after tsc has, several times the cost of
// this lint on every `npm test`, and they found no bug in this tree.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  // Generated code and run output are not ours to lint.
  { ignores: ["gen/", "node_modules/", "reports/"] },

  // The two recommended sets: likely mistakes (unreachable code, duplicate keys, useless
  // assignments, `any` without a reason), with the core rules tsc already covers turned off.
  js.configs.recommended,
  tseslint.configs.recommended,

  {
    rules: {
      // Unused code is dead code; a leading `_` marks what a signature or a loop must name anyway.
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
        },
      ],
      // verbatimModuleSyntax keeps at run time every import not marked `type`: a class or enum
      // imported only as a type still loads its module (tsc refuses only pure types), and so does
      // `import { type A } from "m"`. Both rules can fix what they find.
      "@typescript-eslint/consistent-type-imports": [
        "error",
        // `typeof import("m")` in an annotation loads nothing, so it may stay.
        { fixStyle: "inline-type-imports", disallowTypeAnnotations: false },
      ],
      "@typescript-eslint/no-import-type-side-effects": "error",
      // `==` converts types; `x == null` (null or undefined) is the one idiom worth keeping.
      eqeqeq: ["error", "always", { null: "ignore" }],
      // The server logs through pino (structured, levelled, one line per event); console output
      // belongs only to the command-line tools, benchmarks and tests (next block).
      "no-console": "error",
    },
  },
  {
    files: ["src/tools/**", "bench/**", "ghz-bench/**", "test/**"],
    rules: { "no-console": "off" },
  },

  // CommonJS config files of other tools (dependency-cruiser).
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } },
  },
);
