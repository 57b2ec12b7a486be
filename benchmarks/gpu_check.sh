#!/bin/bash
# The GPU checks of one short device lease, in one go: the whole test suite with CuPy and the GPU
# (the CuPy tests, the NCCL ranks where mpiexec is found), then the step and op benchmarks on CuPy
# beside PyTorch on CUDA, each log into OUTPUT_FOLDER. Every step has its own time limit, so one that
# hangs costs its own minutes and the rest still run; the folder's when.txt says what ran and how it ended.
#     bash benchmarks/gpu_check.sh OUTPUT_FOLDER [PYTHON]
# The commit is read from MINIDL_COMMIT where the tree travels without .git.
# The MPI tests need MPICH's mpiexec and its library together; the H200 image's own mpi4py loads its Open
# MPI, which cannot start there. Carry the mpich and mpi4py wheels (cp312) in .whl/ (`carry: [".whl"]`):
# this script installs them and points mpi4py at MPICH's library (pip --target keeps a wheel's bin/ but
# drops its lib/, so the library is unpacked apart).
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUTPUT_FOLDER [PYTHON]}
py=${2:-python3}
out=$(realpath -m "$out")
cd "$(dirname "$0")/.."
mkdir -p "$out"
export PYTHONUNBUFFERED=1

step() {   # step SECONDS LOG COMMAND...: run it with a limit, append to LOG, note how it ended
  local limit=$1 log=$2; shift 2
  local start=$SECONDS
  echo "\$ $*" >> "$out/$log"
  timeout -s TERM "$limit" "$@" >> "$out/$log" 2>&1
  echo "rc=$? ${limit}s limit, $((SECONDS - start)) s: $*" | tee -a "$out/when.txt"
}

if compgen -G ".whl/mpich-*.whl" > /dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  unzip -q -o .whl/mpich-*.whl 'mpich-*.data/data/lib/*' -d /tmp/mpich
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
  MPI4PY_LIBMPI=$(echo /tmp/mpich/*/data/lib/libmpi.so.12)
  export MPI4PY_LIBMPI
fi

{ date -u; echo "commit ${MINIDL_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)}"; uname -a
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$py" -c "import sys, numpy, cupy, torch; print(sys.version.split()[0], 'numpy', numpy.__version__,
  'cupy', cupy.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), 'torch', torch.__version__)"
  echo "mpiexec: $(command -v mpiexec || echo none), MPI4PY_LIBMPI: ${MPI4PY_LIBMPI:-unset}"; } > "$out/when.txt" 2>&1

step 300 pytest.log "$py" -m pytest -p no:cacheprovider -q -rs
for tf32 in "" --tf32; do
  for batch in 128 256; do
    step 60 bench_train_step_cupy.log "$py" benchmarks/bench_train_step.py --backend cupy --batch $batch $tf32
  done
done
step 60 bench_train_step_cupy.log "$py" benchmarks/bench_train_step.py --backend cupy --batch 128 --batch-norm
step 60 bench_train_step_cupy.log "$py" benchmarks/bench_train_step.py --backend cupy --batch 256 --eval
step 120 bench_ops_cupy.log "$py" benchmarks/bench_ops.py --backend cupy
step 60 bench_train_step_cupy_kernels.log "$py" benchmarks/bench_train_step.py --backend cupy --batch 128 --no-torch --kernel-profile
date -u >> "$out/when.txt"
