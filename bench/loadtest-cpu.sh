#!/usr/bin/env bash
# Where the CPU of a load test goes, by process and per booked seat: the server (src/main.ts, one
# process), PostgreSQL, Redis and the load generator; then what PostgreSQL did (transactions, row
# operations, statements) and what the server's main thread did (CPU by RPC kind). On a machine
# that runs all of them, the load test's wall time is their CPU time divided by the cores, so
# these are the figures to compare between two versions of the code when the machine's speed
# drifts between runs. Output: markdown tables on stdout (paste into docs/benchmarks.md),
# progress on stderr; exit status 0 only when the run's invariants all PASS.
#
#   bash bench/loadtest-cpu.sh                         # 10,000 users, cap 2,000, admission every 100 ms
#   USERS=1000 MAX_ACTIVE=200 bash bench/loadtest-cpu.sh
#   PRIVATE_PG=1 PRIVATE_REDIS=1 bash bench/loadtest-cpu.sh   # own servers: statement stats, no neighbours
#
# Settings (environment): USERS (10000), ARRIVAL (closed; burst or ramp:<seconds>: the load test's
# --arrival), MAX_ACTIVE (cap, 2000), ADMISSION_INTERVAL_MS (100),
# POOL (DATABASE_POOL_MAX, 24), SEATS (50000), PORT and CONNECT_PORT (free ports below 32768),
# DATABASE_URL (postgres://root@127.0.0.1:5432/postgres: a scratch database is created next to it
# and dropped afterwards), REDIS_URL (redis://127.0.0.1:6379; keys under a run prefix, deleted
# afterwards), PRIVATE_PG=1 (initdb + pg_ctl a PostgreSQL 15 of our own on a free port with
# pg_stat_statements preloaded, as user postgres when run as root; removed afterwards),
# PRIVATE_REDIS=1 (a redis-server of our own on a free port, no persistence), PROFILE (1; 0 skips
# the server CPU profile), STATEMENT_OWNERS (as PROFILE; 0 leaves the statement counter out of the
# server), SAMPLING_US (profiler interval, 1000), TOP (rows of the top lists, 15),
# KEEP_PROFILE=DIR (keep the server's profile there: a .cpuprofile for Chrome DevTools, and the
# recording that `node --import tsx bench/cpu-profile-summary.ts --profile FILE --seats N` reads).
#
# Needs psql, redis-cli, curl and ss (iproute2) on PATH, and /proc: Linux, on the machine that
# runs PostgreSQL and Redis (their processes are what it measures).
#
# Method.
# - CPU by process: two snapshots of /proc/<pid>/stat (user + system time), one after seeding and
#   one after the load test and its audit, while the server and its connections are still up;
#   the load generator's CPU comes from bash's `time`. On the shared PostgreSQL only the backends
#   of the run's database count as its backends (their process title names it); the server's
#   background processes (WAL writer, checkpointer, ...) are listed apart, since other databases
#   use them too. A private PostgreSQL counts whole. Backends that exit between the snapshots
#   (the audit's connections) are not counted. "Other processes" is the rest of the machine.
# - PostgreSQL: bench/pg-stats.ts snapshots pg_stat_database and pg_stat_user_tables for the run's
#   database, and pg_stat_statements when the server preloads it (the shared one does not, and
#   preloading needs a restart, which this script never does to a server it did not start:
#   PRIVATE_PG=1 gives statement counts and times). Deltas, nothing is reset; the second
#   snapshot is taken once the server has stopped and its backends have flushed their counters.
# - Server CPU by RPC kind: bench/cpu-profile-record.ts attaches to the server's inspector
#   (started with --inspect on a free port) and runs the V8 CPU profiler for the same window as
#   the snapshots. bench/cpu-profile-summary.ts maps every frame back to its TypeScript file and
#   function and gives each sample to the outermost frame on its stack that belongs to one RPC
#   (its handler, a function named like the RPC, or a file that serves only that RPC) or to a
#   background task (admission loop, outbox relay, hold sweeper); rules in
#   bench/cpu-profile-rules.ts. Work that resumes after an await has only the resumed function on
#   its stack: what is left after the rules is listed by layer (MikroORM/pg after an await, the
#   grpc-js transport, the RPC layer, ...), not guessed. The main thread's measured CPU time
#   (/proc) is spread over the busy samples. V8 samples on wall-clock time, so a thread that loses
#   its core inside a socket write (the write wakes PostgreSQL) is sampled there while it waits:
#   socket-write samples are weighted down to claim at most the thread's system time. The
#   server's other threads (GC helpers, libuv pool) are the process's CPU minus the main thread's.
#   Calls per RPC come from the server's GET /metrics.
# - Queries by RPC kind: bench/pg-statement-owners.ts, preloaded into the server
#   (STATEMENT_OWNERS, on with PROFILE), counts every query the pg driver sends, for the RPC
#   whose call it was sent in (an AsyncLocalStorage around each grpc-js handler follows the call
#   through MikroORM) or for the background task on its async stack. The PostgreSQL-client CPU
#   of the profile is shared out by these counts: an estimate, labelled as one.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

USERS=${USERS:-10000}
ARRIVAL=${ARRIVAL:-closed}
MAX_ACTIVE=${MAX_ACTIVE:-2000}
ADMISSION_INTERVAL_MS=${ADMISSION_INTERVAL_MS:-100}
POOL=${POOL:-24}
SEATS=${SEATS:-50000}
BASE_URL=${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PRIVATE_PG=${PRIVATE_PG:-0}
PRIVATE_REDIS=${PRIVATE_REDIS:-0}
PROFILE=${PROFILE:-1}
STATEMENT_OWNERS=${STATEMENT_OWNERS:-$PROFILE}
SAMPLING_US=${SAMPLING_US:-1000}
TOP=${TOP:-15}
PG_BIN=/usr/lib/postgresql/15/bin
RUN=cpu$(date +%s)$$
DB=loadtest_$RUN
PREFIX="lt:$RUN:"
WORK=$(mktemp -d)
exec 3>&2 # progress of the long steps, also from inside redirected groups

log() { echo "loadtest-cpu: $(date +%T) $*" >&3; }
fail() {
  echo "loadtest-cpu: FAILED: $*" >&3
  exit 1
}
for tool in psql redis-cli curl ss; do command -v "$tool" > /dev/null || fail "$tool is not on PATH"; done
[[ -r /proc/self/stat ]] || fail "no /proc: this script measures Linux processes"
# A port nobody listens on, from a random start so that parallel runs do not pick the same one,
# below Linux's ephemeral range (32768 and up), where outgoing connections take ports too.
free_port() {
  local port=$((20000 + RANDOM % 12000))
  while ss -ltnH "sport = :$port" | grep -q .; do port=$((port + 1)); done
  echo "$port"
}
PORT=${PORT:-$(free_port)}
CONNECT_PORT=${CONNECT_PORT:-$(free_port)}
[[ $CONNECT_PORT != "$PORT" ]] || fail "PORT and CONNECT_PORT are both $PORT"
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  local status=$?
  set +e
  trap - ERR
  [[ -n "${RECORDER:-}" ]] && kill -INT "$RECORDER" 2> /dev/null && wait "$RECORDER" 2> /dev/null
  [[ -n "${SERVER:-}" && -z "${SERVER_STOPPED:-}" ]] && kill -TERM "$SERVER" 2> /dev/null && wait "$SERVER" 2> /dev/null
  if [[ -n "${DB_CREATED:-}" ]]; then
    log "cleaning up: dropping database $DB (waits for a checkpoint: slow while PostgreSQL is busy)"
    psql "$BASE_URL" -qc "drop database if exists $DB with (force)" > /dev/null
  fi
  if [[ -n "${PG_DIR:-}" ]]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop > /dev/null 2>&1
    rm -rf "$PG_DIR"
  fi
  if [[ -n "${REDIS_PID:-}" ]]; then
    kill -TERM "$REDIS_PID" 2> /dev/null && wait "$REDIS_PID" 2> /dev/null
  elif [[ -n "${SERVER:-}" ]]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2> /dev/null | xargs -r redis-cli -u "$REDIS_URL" del > /dev/null
  fi
  rm -rf "$WORK"
  return "$status"
}
trap cleanup EXIT
trap 'echo "loadtest-cpu: FAILED: line $LINENO: $BASH_COMMAND (exit $?)" >&3' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $PRIVATE_PG == 1 ]]; then
  [[ -x $PG_BIN/initdb ]] || fail "PRIVATE_PG=1 needs PostgreSQL 15 in $PG_BIN"
  PG_DIR=$(mktemp -d /tmp/loadtest-cpu-pg.XXXXXX)
  [[ $(id -u) == 0 ]] && chown postgres: "$PG_DIR"
  PG_PORT=$(free_port)
  log "private PostgreSQL 15 on port $PG_PORT ($PG_DIR)"
  as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U root -A trust --no-sync > "$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&3; fail "initdb failed"; }
  # The shared server's settings that matter here (autovacuum off, 100 connections), plus the
  # statistics module that only loads at start.
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 -o \
    "-c port=$PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR -c autovacuum=off \
     -c max_connections=100 -c shared_buffers=128MB -c shared_preload_libraries=pg_stat_statements" \
    start > /dev/null || { cat "$PG_DIR/server.log" >&3; fail "the private PostgreSQL did not start"; }
  PG_MASTER=$(head -1 "$PG_DIR/data/postmaster.pid")
  BASE_URL="postgres://root@127.0.0.1:$PG_PORT/postgres"
fi
if [[ $PRIVATE_REDIS == 1 ]]; then
  REDIS_PORT=$(free_port)
  log "private Redis on port $REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no > "$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  for _ in $(seq 1 50); do redis-cli -u "$REDIS_URL" ping > /dev/null 2>&1 && break || sleep 0.2; done
  redis-cli -u "$REDIS_URL" ping > /dev/null 2>&1 || fail "the private Redis did not start"
fi
DB_URL="${BASE_URL%/*}/$DB"
psql "$BASE_URL" -qc "create database $DB" || fail "cannot create database $DB at ${BASE_URL%/*}"
DB_CREATED=1

log "starting the server on port $PORT"
inspect=() preload=()
[[ $PROFILE == 1 ]] && inspect=(--inspect="127.0.0.1:$(free_port)")
[[ $STATEMENT_OWNERS == 1 ]] && preload=(--import ./bench/pg-statement-owners.ts)
DATABASE_URL=$DB_URL REDIS_URL=$REDIS_URL REDIS_KEY_PREFIX=$PREFIX PORT=$PORT CONNECT_PORT=$CONNECT_PORT WORKERS=1 \
  MAX_ACTIVE_USERS=$MAX_ACTIVE ADMISSION_INTERVAL_MS=$ADMISSION_INTERVAL_MS DATABASE_POOL_MAX=$POOL LOG_LEVEL=warn \
  STATEMENT_OWNERS_OUT="$WORK/statement-owners.json" node "${inspect[@]}" --import tsx "${preload[@]}" src/main.ts > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 240); do
  ss -ltnH "sport = :$PORT" | grep -q . && break
  kill -0 "$SERVER" 2> /dev/null || { cat "$WORK/server.log" >&3; fail "the server exited during start-up"; }
  sleep 0.5
done
ss -ltnH "sport = :$PORT" | grep -q . || fail "the server did not listen on port $PORT within 120 s"

common=(--target "127.0.0.1:$PORT" --max-active "$MAX_ACTIVE" --database-url "$DB_URL" --redis-url "$REDIS_URL" --redis-key-prefix "$PREFIX")
log "seeding $SEATS seats"
node --import tsx src/tools/loadtest.ts "${common[@]}" --seed --seats "$SEATS" --users 1 --no-audit > "$WORK/seed.txt" 2>&1 ||
  { tail -20 "$WORK/seed.txt" >&3; fail "seeding failed"; }

# pid, utime + stime in clock ticks, group: the fields after the last ") " of /proc/<pid>/stat,
# grouped by pid, listening port or PostgreSQL process title (from ps).
REDIS_PORT=${REDIS_URL##*:}
REDIS_PORT=${REDIS_PORT%%/*}
REDIS_PIDS=$(ss -ltnpH "sport = :$REDIS_PORT" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' ')
[[ -n $REDIS_PIDS ]] || log "no process found listening on Redis port $REDIS_PORT: Redis CPU will read 0"
snapshot() {
  # A process that exits between the glob and the read makes cat fail: not an error here.
  { ps -eo pid=,ppid=,args= | sed 's/^ */T /'; { cat /proc/[0-9]*/stat 2> /dev/null || true; } | sed 's/^/S /'; } |
    awk -v server="$SERVER" -v redis=" $REDIS_PIDS" -v db="$DB" -v master="${PG_MASTER:-}" '
      $1 == "T" { ppid[$2] = $3; title[$2] = $0; next }
      {
        pid = $2; comm = $3; sub(/^.*\) /, "")
        if (pid == server) group = "server"
        else if (index(redis, " " pid " ")) group = "redis"
        else if (comm != "(postgres)") group = "other"
        else if (master != "") group = (pid == master || ppid[pid] == master) ? "pg" : "other"
        else if (index(title[pid], " " db " ")) group = "pg"
        else if (title[pid] ~ /: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher|archiver)/ ||
                 title[pid] ~ /bin\/postgres /) group = "pgshared"
        else group = "other"
        print pid, $12 + $13, group
      }'
}
metrics() { curl -sf "http://127.0.0.1:$CONNECT_PORT/metrics" > "$1" || fail "GET /metrics on port $CONNECT_PORT failed"; }
pg_snapshot() { node --import tsx bench/pg-stats.ts snapshot --url "$DB_URL" --out "$1" || fail "PostgreSQL statistics snapshot failed"; }

pg_snapshot "$WORK/pg-before.json"
metrics "$WORK/metrics-before.txt"
if [[ $PROFILE == 1 ]]; then
  ws=$(grep -o 'ws://[^ ]*' "$WORK/server.log" | head -1)
  [[ -n $ws ]] || fail "the server printed no inspector address"
  node --import tsx bench/cpu-profile-record.ts --inspector "$ws" --pid "$SERVER" --interval-us "$SAMPLING_US" \
    --out "$WORK/profile.json" --ready "$WORK/recording" 2> "$WORK/recorder.log" &
  RECORDER=$!
  for _ in $(seq 1 120); do [[ -e $WORK/recording ]] && break || sleep 0.5; done
  [[ -e $WORK/recording ]] || { cat "$WORK/recorder.log" >&3; fail "the CPU profiler did not start"; }
fi
snapshot > "$WORK/before"

[[ $STATEMENT_OWNERS == 1 ]] && kill -USR2 "$SERVER"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "running $USERS users (cap $MAX_ACTIVE, admission every $ADMISSION_INTERVAL_MS ms)"
TIMEFORMAT='%U %S'
loadtest_status=0
{ time node --import tsx src/tools/loadtest.ts "${common[@]}" --users "$USERS" --arrival "$ARRIVAL" --json "$WORK/report.json" \
  > "$WORK/report.txt" 2> >(tee "$WORK/progress.txt" >&3); } 2> "$WORK/loadgen-time" || loadtest_status=$?
((loadtest_status == 130 || loadtest_status == 143)) && fail "interrupted"
snapshot > "$WORK/after"
if [[ $STATEMENT_OWNERS == 1 ]]; then
  kill -USR2 "$SERVER"
  for _ in $(seq 1 40); do [[ -s $WORK/statement-owners.json ]] && break || sleep 0.25; done
  [[ -s $WORK/statement-owners.json ]] || fail "the server wrote no statement owners"
fi
if [[ -n ${RECORDER:-} ]]; then
  log "writing the server's CPU profile"
  kill -INT "$RECORDER"
  wait "$RECORDER" || { cat "$WORK/recorder.log" >&3; fail "recording the CPU profile failed"; }
  RECORDER=
  if [[ -n ${KEEP_PROFILE:-} ]]; then
    mkdir -p "$KEEP_PROFILE"
    cp "$WORK/profile.json" "$KEEP_PROFILE/server-$RUN.recording.json"
    node -e 'const fs = require("fs"); fs.writeFileSync(process.argv[2], JSON.stringify(JSON.parse(fs.readFileSync(process.argv[1])).profile))' \
      "$WORK/profile.json" "$KEEP_PROFILE/server-$RUN.cpuprofile"
    log "profile kept in $KEEP_PROFILE/server-$RUN.cpuprofile"
  fi
fi
metrics "$WORK/metrics-after.txt"
# An idle PostgreSQL 15 backend flushes its statistics within a second, or 10 s later when the
# first attempt met a lock; one that exits flushes them at once. So: stop the server, wait for
# its connections to close, then read.
log "stopping the server"
kill -TERM "$SERVER"
wait "$SERVER" || log "the server exited with status $?"
SERVER_STOPPED=1
for _ in $(seq 1 40); do
  [[ $(psql "$BASE_URL" -Atc "select count(*) from pg_stat_activity where datname = '$DB'") == 0 ]] && break
  sleep 0.25
done
pg_snapshot "$WORK/pg-after.json"

[[ -s $WORK/report.json ]] || { tail -20 "$WORK/progress.txt" >&3; fail "the load test ended without a report (exit $loadtest_status)"; }
seats=$(node -p "JSON.parse(require('fs').readFileSync('$WORK/report.json', 'utf8')).outcome.paymentsOk")
((seats > 0)) || log "no seat was booked: per-seat figures are divided by 1"
TICKS=$(getconf CLK_TCK)
read -r lg_user lg_sys < <(tail -1 "$WORK/loadgen-time")

echo "## bench/loadtest-cpu.sh: $USERS users, cap $MAX_ACTIVE, admission every $ADMISSION_INTERVAL_MS ms"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname), $(nproc) cores, load average before the run: $load_before."
echo "PostgreSQL: $([[ $PRIVATE_PG == 1 ]] && echo "private, port $PG_PORT" || echo "shared, ${BASE_URL%/*}"); Redis: $([[ $PRIVATE_REDIS == 1 ]] && echo private || echo shared) ($REDIS_URL)."
echo
sed -n 's/^ *//; /^wall time/p; /^RESULT/p' "$WORK/report.txt" | sed 's/^/    /'
echo
awk -v ticks="$TICKS" -v lg="$lg_user $lg_sys" -v seats="$seats" -v users="$USERS" \
  -v private_pg="$PRIVATE_PG" -v out="$WORK/cpu-s" '
  NR == FNR { before[$1] = $2; next }
  { cpu[$3] += ($2 - ($1 in before ? before[$1] : 0)) / ticks }
  END {
    split(lg, t, " "); cpu["loadgen"] = t[1] + t[2]
    if (seats < 1) seats = 1
    n = split("server|pg|pgshared|redis|loadgen", keys, "|")
    name["server"] = "server (src/main.ts)"; name["redis"] = "Redis"; name["loadgen"] = "load generator"
    name["pg"] = private_pg == 1 ? "PostgreSQL (private server, all processes)" : "PostgreSQL backends of the run database"
    name["pgshared"] = "PostgreSQL background processes (shared with other databases)"
    printf "### CPU by process\n\n| process | CPU s | ms per booked seat | ms per user |\n| --- | ---: | ---: | ---: |\n"
    for (i = 1; i <= n; i++) {
      k = keys[i]; if (k == "pgshared" && private_pg == 1) continue
      printf "| %s | %.1f | %.2f | %.2f |\n", name[k], cpu[k], cpu[k] * 1000 / seats, cpu[k] * 1000 / users; stack += cpu[k]
    }
    printf "| **stack total** | **%.1f** | **%.2f** | **%.2f** |\n", stack, stack * 1000 / seats, stack * 1000 / users
    printf "| other processes (rest of the machine) | %.1f | | |\n", cpu["other"]
    printf "\n%d booked seats, %d users.\n", seats, users
    printf "%.3f %.3f\n", cpu["server"], cpu["pg"] > out
  }' "$WORK/before" "$WORK/after"
read -r server_cpu pg_cpu < "$WORK/cpu-s"
echo
node --import tsx bench/pg-stats.ts report --before "$WORK/pg-before.json" --after "$WORK/pg-after.json" \
  --users "$USERS" --seats "$seats" --pg-cpu-s "$pg_cpu" --totals-out "$WORK/pg-totals" --top "$TOP" ||
  fail "the PostgreSQL report failed"
read -r transactions statements < "$WORK/pg-totals" || true
owners=()
[[ $STATEMENT_OWNERS == 1 ]] && owners=(--statement-owners "$WORK/statement-owners.json")
if [[ $PROFILE == 1 ]]; then
  echo
  node --import tsx bench/cpu-profile-summary.ts --profile "$WORK/profile.json" --seats "$seats" --top "$TOP" \
    --server-cpu-s "$server_cpu" --metrics-before "$WORK/metrics-before.txt" \
    --metrics-after "$WORK/metrics-after.txt" --transactions "$transactions" ${statements:+--statements "$statements"} \
    ${owners[@]+"${owners[@]}"} ||
    fail "the CPU profile summary failed"
fi
grep -q '^RESULT: PASS' "$WORK/report.txt" || fail "the load test's invariants did not all PASS (exit $loadtest_status): $(grep '^RESULT' "$WORK/report.txt" || echo 'no RESULT line')"
