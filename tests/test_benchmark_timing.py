"""The benchmarks' timing harness (benchmarks/_timing.py, bench_ops.py): how many calls it makes, and when.

No timing is asserted here (speed is measured by the benchmarks themselves); these tests check that each
library gets the same treatment: the warm-up, the untimed calls before each timed one, the calls in a row.
"""
import os
import sys
import time

import pytest

from test_recipe import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import _timing  # noqa: E402
import bench_ops  # noqa: E402


def counting(log, name, seconds=0.0):
    def call():
        log.append(name)
        if seconds:
            time.sleep(seconds)
    return call


@pytest.mark.parametrize("prime,per_turn", [(None, 1), (0.0, 2)])
def test_time_interleaved_warms_up_then_times_each_call_in_turns(prime, per_turn):
    """One warm-up each, then 3 rounds; in each, a's calls (an untimed one first when primed), then b's."""
    log = []
    calls = {name: (counting(log, name), None) for name in ("a", "b")}
    seconds = _timing.time_interleaved(calls, repeats=3, warmup=1, settle=0.0, prime=prime)
    assert set(seconds) == {"a", "b"} and all(t >= 0 for t in seconds.values())
    assert log == ["a", "b"] + (["a"] * per_turn + ["b"] * per_turn) * 3


def test_prime_keeps_calling_until_its_time_is_up():
    log = []
    _timing.time_interleaved({"a": (counting(log, "a", 0.002), None)}, repeats=1, warmup=0, settle=0.0, prime=0.02)
    assert log.count("a") >= 1 + 8                             # 20 ms of 2-ms calls, then the timed one


def test_fast_ops_are_timed_over_calls_in_a_row_and_slow_ones_alone():
    fast, slow = [], []
    n_fast = bench_ops.calls_in_a_row((counting(fast, "x"), lambda: None))
    n_slow = bench_ops.calls_in_a_row((counting(slow, "x", bench_ops.MIN_TIMED_SECONDS * 1.5), lambda: None))
    assert n_fast > 1 and n_slow == 1
    log = []
    bench_ops.repeated(counting(log, "x"), n_fast)()
    assert len(log) == n_fast
    assert bench_ops.repeated(print, 1) is print
