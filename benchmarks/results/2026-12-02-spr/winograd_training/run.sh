#!/bin/bash
# The paper's NIN (width 1, no batch norm) on 5,000 CIFAR-10 images for 2 epochs, same seed, twice:
# algorithm "auto" (Winograd for conv2, conv3) and im2col only (WINOGRAD_MIN_CHANNELS set out of reach).
# EXTRA: more options (--batch-norm), PREFIX: of the log names (nobn_, bn_)
py=${1:-python}
here=$(cd "$(dirname "$0")" && pwd); cd "$here/../../../.."
{ date -u; uptime; git rev-parse --short HEAD; } > "$here/${PREFIX}when.txt"
args="--data ../shared/datasets/cifar10-jpeg.tar.gz --subset 5000 --epochs 2 --quiet $EXTRA"
MINIDL_DATA=$(mktemp -d) "$py" examples/train_nin_cifar10.py $args --out "$(mktemp -d)/run" > "$here/${PREFIX}auto_winograd.log" 2>&1
MINIDL_DATA=$(mktemp -d) "$py" -c "
import runpy, sys
import minidl.functional.conv as conv
conv.WINOGRAD_MIN_CHANNELS = float('inf')
sys.argv = ['examples/train_nin_cifar10.py'] + sys.argv[1:]
runpy.run_path('examples/train_nin_cifar10.py', run_name='__main__')
" $args --out "$(mktemp -d)/run" > "$here/${PREFIX}im2col_only.log" 2>&1
{ date -u; uptime; } >> "$here/${PREFIX}when.txt"
