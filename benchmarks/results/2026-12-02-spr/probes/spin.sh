#!/bin/bash
# OpenBLAS's threads spinning after a multi-threaded call: conv1 timed in turns right after bench_ops' bare
# 2-thread products, without the rest before each call (the script of 472153c) and with it (this one),
# and with OpenBLAS told to stop spinning at once (OPENBLAS_THREAD_TIMEOUT=4).
py=${1:-python}
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../../../.." && pwd)
for env in "" "OPENBLAS_THREAD_TIMEOUT=4"; do
  echo "== 472153c bench_ops (no rest) $env"; (cd /tmp/wt-472153c && env $env "$py" benchmarks/bench_ops.py --batch 128 --only conv1 --no-torch 2>/dev/null | tail -1)
  echo "== current bench_ops (0.2 s rest) $env"; (cd "$repo" && env $env "$py" benchmarks/bench_ops.py --batch 128 --only conv1 --no-torch 2>/dev/null | tail -1)
done
