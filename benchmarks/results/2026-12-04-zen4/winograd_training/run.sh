#!/bin/bash
# NIN with batch norm (width 1) on 5,000 CIFAR-10 images for 2 epochs, same seed, three times: algorithm
# "auto" (Winograd, tiles of 8 for conv2 and 6 for conv3), Winograd with tiles of 6 only (the code before
# 2026-12-04), and im2col only (WINOGRAD_MIN_CHANNELS out of reach).
py=${1:-python}
here=$(cd "$(dirname "$0")" && pwd); cd "$here/../../../.."
{ date -u; uptime; git rev-parse --short HEAD; } > "$here/when.txt"
args="--data ../shared/datasets/cifar10-jpeg.tar.gz --subset 5000 --epochs 2 --quiet --batch-norm"
run() {   # $1: log name, $2: Python lines run before the script
  MINIDL_DATA=$(mktemp -d) "$py" -c "
import runpy, sys
$2
sys.argv = ['examples/train_nin_cifar10.py'] + sys.argv[1:]
runpy.run_path('examples/train_nin_cifar10.py', run_name='__main__')
" $args --out "$(mktemp -d)/run" > "$here/$1.log" 2>&1
}
run auto_tiles_8 ""
run tiles_6_only "import minidl.kernels.winograd as w; w.TILES = (6,)"
run im2col_only "import minidl.functional.conv as conv; conv.WINOGRAD_MIN_CHANNELS = float('inf')"
{ date -u; uptime; } >> "$here/when.txt"
