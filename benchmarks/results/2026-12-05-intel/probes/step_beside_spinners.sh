#!/bin/bash
# The training step at batch 64 with batch norm, alone and then beside two busy loops at nice 19 (which keep
# both virtual CPUs from halting): does the wake-up after a rest matter in a step? Run from the repository root.
python benchmarks/bench_train_step.py --batch 64 --batch-norm
nice -n 19 python -c "while True: pass" & a=$!
nice -n 19 python -c "while True: pass" & b=$!
sleep 1
python benchmarks/bench_train_step.py --batch 64 --batch-norm
kill $a $b
