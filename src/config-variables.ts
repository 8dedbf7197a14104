// The documented environment: every variable the server reads, with its default and meaning, in
// README order (config.ts parses them; test/unit/compose.test.ts checks docker-compose.yml against it).

export interface ConfigVariable {
  name: string;
  defaultValue: string;
  description: string;
}

/** The documented environment, in README order. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  {
    name: "DATABASE_URL",
    defaultValue: "postgres://root@127.0.0.1:5432/test",
    description: "PostgreSQL connection URL",
  },
  { name: "DATABASE_POOL_MAX", defaultValue: "16", description: "PostgreSQL connections per process" },
  {
    name: "REDIS_URL",
    defaultValue: "redis://127.0.0.1:6379",
    description: "Redis URL (a `/N` path selects the logical database)",
  },
  {
    name: "REDIS_CLUSTER_NODES",
    defaultValue: "",
    description:
      "Redis Cluster nodes as `host:port,host:port` (any reachable ones; the rest are discovered), with the user, password and TLS (rediss://) of REDIS_URL; empty uses the single node at REDIS_URL",
  },
  { name: "REDIS_KEY_PREFIX", defaultValue: "cb:", description: "prefix of every Redis key" },
  { name: "HOST", defaultValue: "0.0.0.0", description: "interface both ports bind to" },
  {
    name: "PORT",
    defaultValue: "50051",
    description: "gRPC port (grpc-js): the services, health and reflection; 0 picks a free port",
  },
  {
    name: "CONNECT_PORT",
    defaultValue: "8080",
    description: "Connect and gRPC-Web port (connect-node; HTTP/2 without TLS and HTTP/1.1) and GET /metrics",
  },
  {
    name: "CORS_ORIGINS",
    defaultValue: "",
    description:
      "browser origins allowed to call the Connect port from another origin, as `https://a.example,https://b.example` or `*` for any; empty sends no CORS headers (same origin only)",
  },
  {
    name: "MAX_ACTIVE_USERS",
    defaultValue: "1000",
    description: "users admitted from the waiting room at once, per concert",
  },
  { name: "ADMISSION_INTERVAL_MS", defaultValue: "1000", description: "admission tick" },
  { name: "ACTIVE_TOKEN_TTL", defaultValue: "600", description: "seconds an admitted user may book and pay" },
  {
    name: "EXPECTED_SESSION_SECONDS",
    defaultValue: "120",
    description:
      "how long an admitted user is expected to keep a slot (book and pay, or leave): the wait estimate's prior until the line has been seen to move; `0` = none, and a place beyond the free slots is unknown until then",
  },
  {
    name: "WAITING_TOKEN_TTL",
    defaultValue: "60",
    description: "seconds a waiting user keeps their place without polling or watching",
  },
  { name: "SEAT_HOLD_SECONDS", defaultValue: "300", description: "how long a seat hold lasts before payment" },
  { name: "MAX_SEATS_PER_USER", defaultValue: "4", description: "live holds and purchases per user and schedule" },
  {
    name: "HOLD_SWEEP_INTERVAL_MS",
    defaultValue: "1000",
    description: "how often expired seat holds are swept back to available",
  },
  { name: "LOG_LEVEL", defaultValue: "info", description: "fatal, error, warn, info, debug, trace or silent" },
  { name: "SERVICES", defaultValue: "queue,booking,wallet,admin", description: "services this process serves" },
  { name: "WORKERS", defaultValue: "1", description: "server processes sharing the ports (`0` = one per core)" },
  { name: "SEED_DEMO_DATA", defaultValue: "true", description: "create demo concerts when the database has none" },
  { name: "MAX_REQUEST_BYTES", defaultValue: "65536", description: "largest request message accepted" },
  { name: "DEFAULT_DEADLINE_MS", defaultValue: "30000", description: "deadline for calls that set none" },
  {
    name: "MAX_WAITING_USERS",
    defaultValue: "1000000",
    description:
      "users one concert's line may hold waiting; new joins past it get RESOURCE_EXHAUSTED with a retry delay, users already in line keep their place (`0` = no limit)",
  },
  {
    name: "MAX_IN_FLIGHT_CALLS",
    defaultValue: "20000",
    description:
      "unary calls of one service a process answers at once (both ports); more get RESOURCE_EXHAUSTED with a retry delay (`0` = no limit)",
  },
  {
    name: "MAX_OPEN_STREAMS",
    defaultValue: "20000",
    description: "open WatchQueue streams per process and port; more get RESOURCE_EXHAUSTED",
  },
  {
    name: "CONNECT_REQUEST_TIMEOUT_MS",
    defaultValue: "10000",
    description:
      "a Connect-port request whose headers and body have not all arrived this long after it began is closed (HTTP/1.1 and HTTP/2)",
  },
  {
    name: "CONNECT_RESET_BURST",
    defaultValue: "1000",
    description:
      "HTTP/2 streams one Connect-port connection may reset before they were answered, in a burst (a stream reset before its call even started counts ten); past it (and CONNECT_RESET_RATE) the connection gets GOAWAY ENHANCE_YOUR_CALM",
  },
  {
    name: "CONNECT_RESET_RATE",
    defaultValue: "100",
    description: "streams per second that refill CONNECT_RESET_BURST",
  },
  {
    name: "SHUTDOWN_GRACE_MS",
    defaultValue: "10000",
    description:
      "time in-flight calls get to finish on SIGTERM; then they are cancelled, and a process that PostgreSQL or Redis still holds up exits 1 at most SHUTDOWN_CLEANUP_MS later",
  },
  {
    name: "SHUTDOWN_CLEANUP_MS",
    defaultValue: "15000",
    description:
      "time allowed after SHUTDOWN_GRACE_MS for the loops to stop and the stores to close; past it the process exits 1",
  },
  {
    name: "EVENT_STREAM_MAX_LEN",
    defaultValue: "1000000",
    description:
      "events the Redis event stream keeps (trimmed approximately, oldest first; `0` = never trim); every event also stays in the PostgreSQL outbox",
  },
  {
    name: "ADMIN_TOKENS",
    defaultValue: "",
    description:
      "AdminService callers as `name:secret,name2:secret2` (secrets of 16+ characters, sent as `authorization: Bearer <secret>`); empty with no ADMIN_TOKENS_FILE refuses every admin call",
  },
  {
    name: "ADMIN_TOKENS_FILE",
    defaultValue: "",
    description: "a file holding the admin tokens instead, one `name:secret` per line (`#` comments allowed)",
  },
];
