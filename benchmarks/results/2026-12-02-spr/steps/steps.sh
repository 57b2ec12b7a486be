#!/bin/bash
# Each of this evening's commits on the same machine, in the same minutes, twice round-robin:
# the NIN training step at batch 128 (no torch), from a git worktree of that commit.
#   bash benchmarks/results/2026-12-02-spr/steps/steps.sh PYTHON
set -euo pipefail
py=${1:-python}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
commits="a7e5343 e94e46a 6074b63 472153c"
for c in $commits; do
  [ -d /tmp/wt-$c ] || git -C "$repo" worktree add -q /tmp/wt-$c $c
done
{ date -u; uptime; } > "$here/when.txt"
for round in 1 2; do
  for c in $commits; do
    echo "== $c round $round" >> "$here/steps_b128.log"
    (cd /tmp/wt-$c && "$py" benchmarks/bench_train_step.py --batch 128 --no-torch) >> "$here/steps_b128.log" 2>&1
  done
done
{ date -u; uptime; } >> "$here/when.txt"
