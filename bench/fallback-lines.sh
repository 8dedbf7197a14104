#!/usr/bin/env bash
# Lines of the waiting room's Redis-down fallback at two commits (issue 17: "at most 60 % of
# today's fallback lines"). The fallback is the code that exists because Redis can fail or lose
# its data: choosing the store (mode, state table, store row and its entity and migrations), the
# PostgreSQL side of the queue (pg-queue, pg-admission, queue-db), copying between the stores
# (journal, mirror) and the Redis scripts that only recovery runs (MERGE; the journal's). One list
# for both commits; an item missing at a commit counts 0. Lines as `wc -l` counts them.
#
# Usage: bench/fallback-lines.sh [BASE [COMMIT]]   (BASE: f34c989, the tree issue 17 describes;
#        COMMIT: HEAD). Prints each item at both commits, the totals and COMMIT as a share of BASE.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
base=${1:-f34c989}
commit=${2:-HEAD}

files=(
  src/queue/queue-mode.ts
  src/queue/queue-store-states.ts
  src/queue/queue-store.ts
  src/queue/queue-store.entity.ts
  src/queue/queue-fallback.entity.ts
  src/queue/queue-mirror.ts
  src/queue/pg-queue.ts
  src/queue/pg-admission.ts
  src/queue/queue-db.ts
)
# Lua blocks of src/queue/queue-lua.ts, each with the comment lines right above it.
lua=(journal MERGE CLAIM_JOURNAL ACK_JOURNAL)

lines_of_file() {
  if git cat-file -e "$1:$2" 2>/dev/null; then git show "$1:$2" | wc -l; else echo 0; fi
}

lines_of_block() {
  git show "$1:src/queue/queue-lua.ts" | awk -v name="$2" '
    { text[NR] = $0 }
    END {
      for (i = 1; i <= NR; i++)
        if (text[i] ~ "^export const " name " = " || text[i] ~ "^local function " name "\\(") { start = i; break }
      if (!start) { print 0; exit }
      first = start
      while (first > 1 && text[first - 1] ~ /^(\/\/|--)/) first--
      for (end = start; end <= NR; end++)
        if ((text[start] ~ /^export/ && text[end] == "`;") || (text[start] ~ /^local/ && text[end] == "end")) break
      print end - first + 1
    }'
}

migrations() { git ls-tree --name-only "$1" src/platform/db/migrations/ | grep -E 'queue_(fallback|store)' || true; }

declare -A at_base at_commit
items=()
for f in "${files[@]}"; do
  items+=("$f"); at_base[$f]=$(lines_of_file "$base" "$f"); at_commit[$f]=$(lines_of_file "$commit" "$f")
done
for m in $( (migrations "$base"; migrations "$commit") | sort -u); do
  items+=("$m"); at_base[$m]=$(lines_of_file "$base" "$m"); at_commit[$m]=$(lines_of_file "$commit" "$m")
done
for b in "${lua[@]}"; do
  k="queue-lua.ts $b"; items+=("$k"); at_base[$k]=$(lines_of_block "$base" "$b"); at_commit[$k]=$(lines_of_block "$commit" "$b")
done

total_base=0 total_commit=0
printf '%8s %8s  %s\n' "$base" "$(git rev-parse --short "$commit")" item
for k in "${items[@]}"; do
  printf '%8d %8d  %s\n' "${at_base[$k]}" "${at_commit[$k]}" "$k"
  total_base=$((total_base + at_base[$k])); total_commit=$((total_commit + at_commit[$k]))
done
printf '%8d %8d  total; %s is %d %% of %s\n' "$total_base" "$total_commit" "$commit" $((100 * total_commit / total_base)) "$base"
