#!/usr/bin/env bash
# Runs every ghz config in ghz-bench/configs and prints one markdown table (the columns of
# `npm run bench`). Without GHZ_HOST it starts its own server (default settings) on a fresh
# database (DATABASE_URL, default .../concert_ghz, dropped and recreated) seeded with
# `npm run seed`; with GHZ_HOST it uses that server, which needs about 3,500 free seats.
# ghz is $GHZ if set, else the one on PATH.
#
#   bash ghz-bench/run.sh                      # own server on 127.0.0.1:${GHZ_PORT:-50151}
#   GHZ_HOST=127.0.0.1:50051 bash ghz-bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

GHZ=${GHZ:-ghz}
if ! command -v "$GHZ" >/dev/null 2>&1; then
  echo "ghz-bench: ghz not found: set GHZ=/path/to/ghz or put ghz on PATH (https://ghz.sh/docs/install)." >&2
  echo "ghz-bench: 'npm run bench -- --suite calls' measures the same calls without it." >&2
  exit 1
fi
export PATH="$PWD/node_modules/.bin:$PATH"
OUT_DIR=${GHZ_OUT:-reports/ghz-$(date +%Y%m%dT%H%M%S)}
mkdir -p "$OUT_DIR"

if [[ -z "${GHZ_HOST:-}" ]]; then
  export DATABASE_URL=${DATABASE_URL:-postgres://root@127.0.0.1:5432/concert_ghz}
  node --import tsx ghz-bench/prepare.ts database "$DATABASE_URL"
  # prepare.ts takes at most 128 seats per schedule (2 per user): 2,048 holds and 1,280 payments use 26 schedules.
  npm run --silent seed -- --concerts 1 --schedules 32 --seats 200
  GHZ_HOST="127.0.0.1:${GHZ_PORT:-50151}"
  PORT="${GHZ_PORT:-50151}" CONNECT_PORT=0 HOST=127.0.0.1 SEED_DEMO_DATA=false LOG_LEVEL=warn \
    REDIS_KEY_PREFIX="ghz:$$:" node --import tsx src/main.ts >"$OUT_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  # The server's waiting room lives under its own Redis prefix: removed with it, as the other benchmarks do.
  trap 'kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; node --import tsx ghz-bench/prepare.ts cleanup "ghz:$$:" || true' EXIT
fi

node --import tsx ghz-bench/prepare.ts configs "$GHZ_HOST" "$OUT_DIR"
# Reads first, then holds and payments, JoinQueue last: its crowd of waiting users would
# otherwise sit in front of nothing but still cost every later call.
for name in get-queue-status list-seats reserve-seat top-up pay-reservation join-queue; do
  echo "ghz-bench: $name" >&2
  "$GHZ" --config "$OUT_DIR/$name.json" --format json --output "$OUT_DIR/$name.report.json"
done
node --import tsx ghz-bench/report.ts "$OUT_DIR" | tee "$OUT_DIR/results.md"
