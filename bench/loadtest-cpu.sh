#!/usr/bin/env bash
# Where the CPU of a load test goes, by process: the server (src/main.ts, one process), the
# PostgreSQL backends, Redis and the load generator. On a machine that runs all of them, the
# load test's wall time is their CPU time divided by the cores, so this is the figure to compare
# between two versions of the code when the machine's speed drifts between runs.
#
#   bash bench/loadtest-cpu.sh            # 10,000 users, cap 2,000, admission every 100 ms
#   USERS=2000 POOL=10 bash bench/loadtest-cpu.sh
#
# Settings (environment): USERS (10000), MAX_ACTIVE (2000), ADMISSION_INTERVAL_MS (100),
# POOL (DATABASE_POOL_MAX, 24), SEATS (50000), PORT (50071), CONNECT_PORT (50072),
# DATABASE_URL (postgres://root@127.0.0.1:5432/postgres: a scratch database is created next to
# it and dropped afterwards), REDIS_URL (redis://127.0.0.1:6379; keys under a run prefix,
# deleted afterwards).
#
# Needs psql, redis-cli and ss (iproute2) on PATH, and /proc: Linux, on the machine that runs
# PostgreSQL and Redis (their processes are what it measures).
#
# Method: two snapshots of /proc/<pid>/stat (user + system time), one after seeding and one
# after the load test and its audit, while the server and its PostgreSQL connections are still
# up; the load generator's CPU comes from bash's `time`. Backends that exit between the
# snapshots (the load test's own audit connections) are not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

USERS=${USERS:-10000}
MAX_ACTIVE=${MAX_ACTIVE:-2000}
ADMISSION_INTERVAL_MS=${ADMISSION_INTERVAL_MS:-100}
POOL=${POOL:-24}
SEATS=${SEATS:-50000}
PORT=${PORT:-50071}
CONNECT_PORT=${CONNECT_PORT:-50072}
BASE_URL=${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
RUN=cpu$(date +%s)
DB_URL="${BASE_URL%/*}/loadtest_$RUN"
PREFIX="lt:$RUN:"
WORK=$(mktemp -d)

psql "$BASE_URL" -qc "create database loadtest_$RUN"
cleanup() {
  [[ -n "${SERVER:-}" ]] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  psql "$BASE_URL" -qc "drop database if exists loadtest_$RUN" || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" | xargs -r redis-cli -u "$REDIS_URL" del > /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL=$DB_URL REDIS_URL=$REDIS_URL REDIS_KEY_PREFIX=$PREFIX PORT=$PORT CONNECT_PORT=$CONNECT_PORT WORKERS=1 \
  MAX_ACTIVE_USERS=$MAX_ACTIVE ADMISSION_INTERVAL_MS=$ADMISSION_INTERVAL_MS DATABASE_POOL_MAX=$POOL LOG_LEVEL=warn \
  node --import tsx src/main.ts > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 120); do
  ss -ltn | grep -q ":$PORT " && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.5
done

common=(--target "127.0.0.1:$PORT" --max-active "$MAX_ACTIVE" --database-url "$DB_URL" --redis-url "$REDIS_URL" --redis-key-prefix "$PREFIX")
echo "loadtest-cpu: seeding $SEATS seats" >&2
node --import tsx src/tools/loadtest.ts "${common[@]}" --seed --seats "$SEATS" --users 1 --no-audit > /dev/null

# pid, utime + stime in clock ticks, comm: fields after the last ") " of /proc/<pid>/stat.
snapshot() { cat /proc/[0-9]*/stat 2>/dev/null | awk '{ pid = $1; comm = $2; sub(/^.*\) /, ""); print pid, $12 + $13, comm }'; }
commits() { psql "$BASE_URL" -Atc "select xact_commit from pg_stat_database where datname = 'loadtest_$RUN'"; }
snapshot > "$WORK/before"
commits_before=$(commits)
echo "loadtest-cpu: $USERS users" >&2
TIMEFORMAT='%U %S'
{ time node --import tsx src/tools/loadtest.ts "${common[@]}" --users "$USERS" > "$WORK/report.txt" 2> "$WORK/progress.txt"; } 2> "$WORK/loadgen-time" || true
snapshot > "$WORK/after"
sleep 0.6 # the statistics collector's flush interval (PostgreSQL 15: at most every second)
commits_after=$(commits)

grep -E "wall time|^RESULT" "$WORK/report.txt" || { tail -20 "$WORK/progress.txt"; exit 1; }
TICKS=$(getconf CLK_TCK)
read -r lg_user lg_sys < <(tail -1 "$WORK/loadgen-time")
awk -v server="$SERVER" -v ticks="$TICKS" -v lg_user="$lg_user" -v lg_sys="$lg_sys" '
  NR == FNR { before[$1] = $2; next }
  {
    used = ($2 - ($1 in before ? before[$1] : 0)) / ticks
    if ($1 == server) group = "server (src/main.ts)"
    else if ($3 ~ /postgres/) group = "PostgreSQL backends"
    else if ($3 ~ /redis-server/) group = "Redis"
    else group = "other processes"
    cpu[group] += used
  }
  END {
    cpu["load generator"] = lg_user + lg_sys
    printf "\n| process | CPU s |\n| --- | ---: |\n"
    n = split("server (src/main.ts)|PostgreSQL backends|Redis|load generator|other processes", order, "|")
    for (i = 1; i <= n; i++) { printf "| %s | %.1f |\n", order[i], cpu[order[i]]; total += cpu[order[i]] }
    printf "| total | %.1f |\n", total
  }' "$WORK/before" "$WORK/after"
echo
echo "PostgreSQL transactions committed during the run: $((commits_after - commits_before))"
