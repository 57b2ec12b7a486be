#!/bin/bash
# One round of the CPU figures of README ("2026-12-02 afternoon"): the step at batch 64 and 128 with and
# without batch norm, inference at batch 256, bench_inference.py, and (since 2026-12-06) bench_ops.py as it
# times now and with --after-rest, one after the other, into a folder with the round's start, end, load
# average and commit (about 7 minutes on 2 cores, 2026-12-06). Run it with nothing else on the machine:
#     bash benchmarks/cpu_round.sh benchmarks/results/DATE-MACHINE/rN-HHMM [python]
set -euo pipefail
out=${1:?usage: bash benchmarks/cpu_round.sh OUTPUT_FOLDER [PYTHON]}
py=${2:-python}
out=$(realpath -m "$out")                 # before the cd below
cd "$(dirname "$0")/.."
mkdir -p "$out"
{ date -u; uptime; git rev-parse --short HEAD; } > "$out/when.txt"
for batch in 64 128; do
  "$py" benchmarks/bench_train_step.py --batch $batch > "$out/bench_train_step_b$batch.log" 2>&1
  "$py" benchmarks/bench_train_step.py --batch $batch --batch-norm > "$out/bench_train_step_b${batch}_batchnorm.log" 2>&1
done
"$py" benchmarks/bench_train_step.py --eval --batch 256 > "$out/bench_train_step_eval_b256.log" 2>&1
"$py" benchmarks/bench_inference.py > "$out/bench_inference.log" 2>&1
"$py" benchmarks/bench_ops.py > "$out/bench_ops.log" 2>&1
"$py" benchmarks/bench_ops.py --after-rest > "$out/bench_ops_after_rest.log" 2>&1
{ date -u; uptime; } >> "$out/when.txt"
