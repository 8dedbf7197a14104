// Import boundaries of src/ (issue 17): shared adapters know no domain, the waiting room knows
// neither booking nor wallet, booking reaches the wallet only through a port app.ts wires in,
// the admin layer sits above the domains, and nothing imports itself back.
// `npm run lint:deps` fails on any violation.

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "platform-imports-no-domain",
      comment: "src/platform holds shared adapters: a domain folder depends on it, never the reverse.",
      severity: "error",
      from: { path: "^src/platform/" },
      to: { path: "^src/(queue|booking|wallet|admin)/" },
    },
    {
      name: "queue-imports-no-booking-or-wallet",
      comment: "The waiting room admits users; what they do once admitted is not its business.",
      severity: "error",
      from: { path: "^src/queue/" },
      to: { path: "^src/(booking|wallet)/" },
    },
    {
      name: "booking-imports-no-wallet",
      comment:
        "Booking defines the ports it needs (e.g. the refund of a paid reservation); app.ts wires the wallet in.",
      severity: "error",
      from: { path: "^src/booking/" },
      to: { path: "^src/wallet/" },
    },
    {
      name: "domains-import-no-admin",
      comment: "AdminService drives the domains through their own commands; none of them knows it exists.",
      severity: "error",
      from: { path: "^src/(queue|booking|wallet)/" },
      to: { path: "^src/admin/" },
    },
    {
      name: "no-import-cycles",
      comment: "A cycle makes load order matter and the modules inseparable; type-only imports count too.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports are dependencies of the design even though they vanish at run time.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
