#!/usr/bin/env bash
# Fails when buf lint fails or when gen/ differs from what proto/ generates now.
set -euo pipefail
cd "$(dirname "$0")/.."
buf lint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
buf generate -o "$tmp"
buf build -o "$tmp/gen/descriptors.binpb"
if ! diff -r gen "$tmp/gen" >/dev/null; then
  echo "gen/ is out of date with proto/: run 'npm run generate' and commit the result" >&2
  diff -r gen "$tmp/gen" | head -20 >&2
  exit 1
fi
echo "buf lint ok; gen/ is up to date"
