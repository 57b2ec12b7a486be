#!/bin/bash
# The checkout before this evening's work (a7e5343) and after it (472153c), one right after the other,
# each with its own benchmarks/bench_train_step.py (PyTorch timed in turns with minidl in both):
#   bash benchmarks/results/2026-12-02-spr/before_after/before_after.sh PYTHON
set -euo pipefail
py=${1:-python}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
for c in a7e5343 472153c; do
  [ -d /tmp/wt-$c ] || git -C "$repo" worktree add -q /tmp/wt-$c $c
done
{ date -u; uptime; } > "$here/when.txt"
for args in "--batch 64" "--batch 128" "--batch 128 --batch-norm" "--eval --batch 256"; do
  name=$(echo "$args" | tr -d '-' | tr ' ' '_')
  for c in a7e5343 472153c; do
    (cd /tmp/wt-$c && "$py" benchmarks/bench_train_step.py $args) > "$here/${name}_$c.log" 2>&1
  done
done
{ date -u; uptime; } >> "$here/when.txt"
