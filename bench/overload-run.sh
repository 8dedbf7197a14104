#!/usr/bin/env bash
# Issue 14's overload run: a 2,000-user load test (cap 400) beside twelve busy loops, six pinned
# to each core, for a bounded 90 s, so the server, PostgreSQL and Redis are starved the way a
# crowded host starves them. It checks what "overload held, not amplified" means:
#   - no switch to the PostgreSQL fallback (a slow Redis is not a dead one),
#   - no user failed for any reason but losing a seat race,
#   - no call answered DEADLINE_EXCEEDED (work is shed early, with RetryInfo),
#   - retried calls at most 5 % of calls.
# Output: a markdown table on stdout, progress on stderr; exit 0 only when every check holds.
#
#   bash bench/overload-run.sh
#   USERS=500 CAP=100 LOOPS=4 LOOP_SECONDS=30 bash bench/overload-run.sh
#
# Settings (environment): USERS (2000), CAP (400), LOOPS (12, split over the cores 0 and 1),
# LOOP_SECONDS (90), DATABASE_URL (postgres://root@127.0.0.1:5432/postgres: a scratch database is
# created next to it and dropped), REDIS_URL (redis://127.0.0.1:6379, keys under a run prefix).
# Needs taskset (util-linux) and jq.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-2000}
CAP=${CAP:-400}
LOOPS=${LOOPS:-12}
LOOP_SECONDS=${LOOP_SECONDS:-90}
DATABASE_URL=${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
for tool in taskset jq; do
  command -v "$tool" >/dev/null || { echo "overload-run needs $tool on PATH" >&2; exit 2; }
done

out=$(mktemp -d)
loops=()
stop_loops() { for pid in "${loops[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap 'stop_loops; rm -rf "$out"' EXIT

echo "overload-run: $LOOPS busy loops for ${LOOP_SECONDS} s, then $USERS users at cap $CAP" >&2
for ((i = 0; i < LOOPS; i++)); do
  # `timeout` bounds each loop even if this script is killed before its trap runs.
  timeout "$LOOP_SECONDS" taskset -c $((i % 2)) sh -c 'while :; do :; done' &
  loops+=($!)
done

# info: the server's "waiting room store" lines (every change of store mode, with its cause).
status=0
npm run -s loadtest -- --start-server --fresh-database --database-url "$DATABASE_URL" --redis-url "$REDIS_URL" \
  --users "$USERS" --max-active "$CAP" --server-log-level info --json "$out/report.json" \
  >"$out/report.txt" 2>"$out/stderr.log" || status=$?
stop_loops
if [ ! -s "$out/report.json" ]; then
  cat "$out/stderr.log" "$out/report.txt" >&2
  echo "overload-run: the load test wrote no report (exit $status)" >&2
  exit 1
fi

# A switch is a move into the postgres state; the start-up fill (postgres → rebuilding → redis) is none.
switches=$(grep 'waiting room store' "$out/stderr.log" | grep -c '"state":"postgres"' || true)
jq -r --argjson switches "$switches" --arg loops "$LOOPS" --arg secs "$LOOP_SECONDS" '
  def calls: [.latency | to_entries[] | select(.key | test("^[A-Z][A-Za-z]+$")) | .value.count] | add;
  def deadline: [.errors | to_entries[] | select(.key | test("DEADLINE_EXCEEDED")) | .value] | add // 0;
  def others: [.outcome.failuresByStage | to_entries[] | .value] | add // 0;
  (.outcome.retries / calls * 100) as $retried
  | "| measurement | figure | target | met |",
    "| --- | ---: | --- | --- |",
    "| busy loops beside the run | \($loops) for \($secs) s | | |",
    "| users, cap; users wall time, s | \(.settings.users), \(.settings.cap); \(.usersWallMs / 1000 | floor) | | |",
    "| switches to the PostgreSQL fallback | \($switches) | 0 | \(if $switches == 0 then "yes" else "no" end) |",
    "| users failed (not seat races) | \(.outcome.usersFailed) | 0 | \(if .outcome.usersFailed == 0 then "yes" else "no" end) |",
    "| calls answered DEADLINE_EXCEEDED | \(deadline) | 0 | \(if deadline == 0 then "yes" else "no" end) |",
    "| retried calls / calls | \(.outcome.retries) / \(calls) = \($retried * 10 | round / 10) % | ≤ 5 % | \(if $retried <= 5 then "yes" else "no" end) |",
    "| audit | \(if .passed then "PASS" else "FAIL" end) | PASS | \(if .passed then "yes" else "no" end) |",
    "",
    "errors: \(.errors | tostring)"
' "$out/report.json"
jq -e --argjson switches "$switches" '
  ([.errors | to_entries[] | select(.key | test("DEADLINE_EXCEEDED")) | .value] | add // 0) as $deadline
  | ([.latency | to_entries[] | select(.key | test("^[A-Z][A-Za-z]+$")) | .value.count] | add) as $calls
  | .passed and .outcome.usersFailed == 0 and $switches == 0 and $deadline == 0 and (.outcome.retries / $calls <= 0.05)
' "$out/report.json" >/dev/null
