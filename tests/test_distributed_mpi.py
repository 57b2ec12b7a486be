"""Data-parallel training on 2 MPI ranks (mpiexec), against one process; the faults of issue 10.

Every job is a subprocess (``mpiexec -n 2 python tests/distributed_jobs.py ...``) with a timeout, so
a hang fails the test instead of blocking CI. Skipped where mpi4py or mpiexec is missing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="the MPI tests need mpi4py (pip install -e '.[mpi]')")
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
if MPIEXEC is None:
    pytest.skip("the MPI tests need mpiexec (the mpich wheel of the [mpi] extra brings one)", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = os.path.join(ROOT, "tests", "distributed_jobs.py")
TIMEOUT = 120
EPS32 = float(np.finfo(np.float32).eps)


def environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))}
    path = [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]   # keep the caller's packages
    env.update(PYTHONPATH=os.pathsep.join(path), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def command(ranks, *args):
    job = [sys.executable, JOBS, *map(str, args)]
    return job if ranks == 1 else [MPIEXEC, "-n", str(ranks), *job]


def run_job(ranks, *args, expect=0):
    out = subprocess.run(command(ranks, *args), env=environment(), capture_output=True, text=True, timeout=TIMEOUT)
    if expect is not None:
        assert out.returncode == expect, f"exit status {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def start_job(ranks, *args):
    return subprocess.Popen(command(ranks, *args), env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def metrics(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def checkpoint(out):
    from minidl.train.checkpoint import load_checkpoint
    return load_checkpoint(os.path.join(out, "checkpoint.safetensors"))


def weights(out):
    return {k.removeprefix("module."): v for k, v in checkpoint(out)["model"].items()}


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three epochs of the same tiny training: one process and 2 ranks, in float32 and float64; and 2 ranks
    with dropout and augmentation (random draws that differ per rank), the reference of the resume tests."""
    base = tmp_path_factory.mktemp("runs")
    done = {}
    for name, ranks, options in [("one32", 1, []), ("two32", 2, []), ("one64", 1, ["--dtype", "float64"]),
                                 ("two64", 2, ["--dtype", "float64"]), ("two32_random", 2, ["--random"])]:
        out = base / name
        run_job(ranks, "fit", out, *options)
        done[name] = str(out)
    return done


def test_two_ranks_give_the_one_process_run_in_float64(runs):
    one, two = weights(runs["one64"]), weights(runs["two64"])
    assert one.keys() == two.keys()
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=0, atol=1e-10, err_msg=k)
    for a, b in zip(metrics(runs["one64"]), metrics(runs["two64"])):
        assert b["test_accuracy"] == a["test_accuracy"]
        assert abs(b["train_loss"] - a["train_loss"]) <= 1e-12 and abs(b["test_loss"] - a["test_loss"]) <= 1e-12


def test_two_ranks_give_the_one_process_run_in_float32(runs):
    """The tolerance is the size of float32 rounding in this very computation: how far the one-process
    float32 run lies from the float64 run. Two float32 runs that sum in other orders each lie about that
    far from the exact trajectory, so they differ by a few times it (4x, plus a few ulps of the loss
    for an epoch where the one-process run happens to land very near the float64 value)."""
    one, two, exact = metrics(runs["one32"]), metrics(runs["two32"]), metrics(runs["one64"])
    rounding = max(abs(a["train_loss"] - e["train_loss"]) for a, e in zip(one, exact))
    assert rounding > 0
    for a, b in zip(one, two):
        tolerance = 4 * rounding + 4 * EPS32 * abs(a["train_loss"])
        assert abs(b["train_loss"] - a["train_loss"]) <= tolerance, (a, b, tolerance)
        assert b["test_accuracy"] == a["test_accuracy"]         # 21 images: every one counted once
        assert b["train_accuracy"] == a["train_accuracy"]
    assert [r["epoch"] for r in two] == [1, 2, 3]
    summary = json.load(open(os.path.join(runs["two32"], "summary.json")))
    assert summary["world_size"] == 2 and summary["images_per_second"] > 0
    assert checkpoint(runs["two32"])["distributed"]["world_size"] == 2


def test_an_exception_on_one_rank_ends_the_job_with_its_error(tmp_path):
    started = time.monotonic()
    out = run_job(2, "fit", tmp_path, "--fail-rank", "1", "--fail-step", "3", expect=None)
    assert out.returncode != 0
    assert time.monotonic() - started < 60
    assert "[rank 1/2] RuntimeError: injected failure on rank 1 at step 3" in out.stderr
    assert "aborting the whole job" in out.stderr


def test_ranks_with_different_weights_stop_with_a_clear_error(tmp_path):
    out = run_job(2, "fit", tmp_path, "--diverge-rank", "1", "--diverge-step", "3", expect=None)
    assert out.returncode != 0
    assert "ReplicasDiverged: the 2 ranks no longer hold the same weights after step 4" in out.stderr
    assert "first features.0.0.weight" in out.stderr


def test_ctrl_c_to_mpiexec_saves_once_and_resume_is_exact(runs, tmp_path):
    job = start_job(2, "fit", tmp_path, "--random", "--step-seconds", "0.25")
    try:
        wait_for(lambda: os.path.exists(tmp_path / "checkpoint.safetensors"), TIMEOUT, "the first epoch's checkpoint")
        time.sleep(0.6)                                   # into the second epoch
        job.send_signal(signal.SIGINT)
        _, err = job.communicate(timeout=TIMEOUT)
    finally:
        job.kill()
    assert job.returncode == 130, err
    state = checkpoint(tmp_path)
    assert state["epoch_state"] is not None or state["epochs_done"] >= 2, "stopped mid-epoch, or at an epoch's end"
    streams = state["distributed"]["random"]
    assert len(streams) == 2 and streams[0] != streams[1], "each rank has its own random stream, saved"
    run_job(2, "fit", tmp_path, "--random", "--resume")
    one, two = weights(runs["two32_random"]), weights(tmp_path)
    for k in one:
        np.testing.assert_array_equal(two[k], one[k], err_msg=k)
    assert [r["epoch"] for r in metrics(tmp_path)] == [1, 2, 3]
    for a, b in zip(metrics(runs["two32_random"]), metrics(tmp_path)):
        # the same steps; only the running loss, summed in float32 between reads, is regrouped at the stop:
        # at most one rounding per batch of the epoch (6) of the sum
        assert abs(a["train_loss"] - b["train_loss"]) <= 6 * EPS32 * a["train_loss"]
        assert (a["train_accuracy"], a["test_accuracy"], a["test_loss"]) == \
            (b["train_accuracy"], b["test_accuracy"], b["test_loss"])


def test_sigterm_to_mpiexec_stops_the_same_way(tmp_path):
    job = start_job(2, "fit", tmp_path, "--step-seconds", "0.25")
    try:
        wait_for(lambda: all(os.path.exists(tmp_path / f"pid.{r}") for r in range(2)), TIMEOUT, "both ranks")
        time.sleep(1.0)
        job.send_signal(signal.SIGTERM)
        _, err = job.communicate(timeout=TIMEOUT)
    finally:
        job.kill()
    assert job.returncode == 130, err
    assert checkpoint(tmp_path)["distributed"]["world_size"] == 2


def test_a_killed_rank_ends_the_job_and_resume_restarts_from_the_last_checkpoint(runs, tmp_path):
    job = start_job(2, "fit", tmp_path, "--random", "--step-seconds", "0.25")
    try:
        wait_for(lambda: os.path.exists(tmp_path / "checkpoint.safetensors"), TIMEOUT, "the first epoch's checkpoint")
        os.kill(int((tmp_path / "pid.1").read_text()), signal.SIGKILL)
        job.communicate(timeout=30)                       # MPI tears the job down
    finally:
        job.kill()
    assert job.returncode != 0
    saved = checkpoint(tmp_path)
    assert saved["epoch_state"] is None and saved["epochs_done"] >= 1          # the end of an epoch
    out = run_job(2, "fit", tmp_path, "--random", "--resume")
    assert f"continuing at epoch {saved['epochs_done'] + 1}" in out.stdout
    one, two = weights(runs["two32_random"]), weights(tmp_path)
    for k in one:
        np.testing.assert_array_equal(two[k], one[k], err_msg=k)


def test_resume_on_another_number_of_ranks_is_refused(runs, tmp_path):
    shutil.copytree(runs["two32"], tmp_path / "run")
    out = run_job(1, "fit", tmp_path / "run", "--resume", "--epochs", "4", expect=None)
    assert out.returncode != 0
    assert "written by a job of 2 rank(s), this one has 1; resume with mpiexec -n 2" in out.stderr


def test_gradient_compression_changes_the_loss_by_its_rounding_only(runs, tmp_path):
    """bf16 keeps 8 significant bits: each gradient, and their sum, is rounded with a relative error up
    to 2^-8, so an update moves by at most ~2^-7 of itself; to first order the loss curve moves by at most
    that fraction of the loss it descends. fp16 has more bits, but small gradients lose theirs as
    subnormals (< 6e-5): the same bound is asserted for both."""
    base = metrics(runs["two32"])
    scale = base[0]["train_loss"]
    float32_noise = max(abs(a["train_loss"] - e["train_loss"]) for a, e in zip(base, metrics(runs["one64"])))
    for kind in ("bf16", "fp16"):
        out = tmp_path / kind
        run_job(2, "fit", out, "--compression", kind)
        compressed = metrics(out)
        shifts = [abs(c["train_loss"] - b["train_loss"]) for c, b in zip(compressed, base)]
        assert max(shifts) <= 2.0**-7 * scale, (kind, shifts)
        assert max(shifts) > 10 * float32_noise, f"{kind}: the reduction does not seem compressed"
        assert compressed[-1]["train_loss"] < compressed[0]["train_loss"]


def test_mpi_collectives_on_numpy_arrays(tmp_path):
    run_job(2, "collectives", tmp_path)
    got = np.load(tmp_path / "collectives.npz")
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    x = [np.random.default_rng(r).standard_normal(1001).astype(np.float32) for r in range(2)]
    for rank in range(2):                                      # every rank holds the same results
        np.testing.assert_array_equal(got["sum"][rank], 3 * base)
        np.testing.assert_array_equal(got["mean"][rank], 1.5 * base)
        np.testing.assert_array_equal(got["max"][rank], 2 * base)
        np.testing.assert_array_equal(got["min"][rank], base)
        expected = np.zeros((4, 6), dtype=np.float32)
        expected[:, ::2] = 3
        np.testing.assert_array_equal(got["strided"][rank], expected)       # the view's values only
        np.testing.assert_array_equal(got["ints"][rank], [1, 2**41 + 1])    # exact integers
        np.testing.assert_array_equal(got["exact"][rank], (x[0] + x[1]) / 2)
        # each 16-bit number is rounded, then the sum: 2^-8 (bf16) / 2^-11 (fp16) of the largest term, twice
        bound = np.maximum(np.abs(x[0]), np.abs(x[1]))
        assert np.all(np.abs(got["bf16"][rank] - got["exact"][rank]) <= 2 * 2.0**-8 * bound + 1e-30)
        assert np.all(np.abs(got["fp16"][rank] - got["exact"][rank]) <= 2 * 2.0**-11 * bound + 6e-8)
        assert not np.array_equal(got["bf16"][rank], got["exact"][rank])
        np.testing.assert_array_equal(got["broadcast"][rank], np.full(5, 1.0))
        assert got["object"][rank] == 1
        assert str(got["mean_of_ints"][rank]) == "all_reduce: op 'mean' needs a floating array, got int64 (use 'sum')"
    np.testing.assert_array_equal(got["bf16"][0], got["bf16"][1])


def test_sync_batch_norm_on_two_ranks_is_batch_norm_of_the_global_batch(tmp_path):
    run_job(2, "sync_bn", tmp_path)
    import minidl
    from minidl import nn
    got = np.load(tmp_path / "sync_bn.npz")
    bn = nn.BatchNorm2d(5)
    bn.weight.data, bn.bias.data = got["weight"], got["bias"]
    bn.set_buffer("running_mean", np.full(5, 0.5))
    bn.set_buffer("running_var", np.full(5, 2.0))
    x = minidl.tensor(got["x"], requires_grad=True)
    y = bn(x)
    y.backward(got["g"])
    for name, expected in [("y", y.data), ("gx", x.grad), ("gw", bn.weight.grad), ("gb", bn.bias.grad)]:
        np.testing.assert_allclose(got[name], expected, rtol=1e-10, atol=1e-12, err_msg=name)
    for rank in range(2):                                   # every rank holds the global running statistics
        np.testing.assert_allclose(got["mean"][rank], bn.running_mean, rtol=1e-12)
        np.testing.assert_allclose(got["var"][rank], bn.running_var, rtol=1e-12)


def test_the_training_script_runs_on_two_ranks(tmp_path, monkeypatch):
    from test_recipe import make_png_tar
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data)
    env = {**environment(), "MINIDL_DATA": str(tmp_path / "cache")}
    script = os.path.join(ROOT, "examples", "train_nin_cifar10.py")
    args = ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--epochs", "1", "--quiet",
            "--schedule", "plateau", "--batch-norm", "--sync-bn", "--grad-compression", "bf16"]
    out = subprocess.run([MPIEXEC, "-n", "2", sys.executable, script, *args, "--batch-size", "6",
                          "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("data parallel: 2 ranks on MPI, 3 images per rank and step") == 1   # rank 0 only
    assert out.stdout.count("epoch   1/1") == 1
    summary = json.load(open(tmp_path / "run" / "summary.json"))
    assert summary["world_size"] == 2 and summary["config"]["sync_bn"] and summary["epochs"] == 1
    refused = subprocess.run([MPIEXEC, "-n", "2", sys.executable, script, *args, "--batch-size", "7",
                              "--out", str(tmp_path / "odd")], env=env, capture_output=True, text=True,
                             timeout=TIMEOUT)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: --batch-size 7 is the global batch, split over 2 ranks: "
                                      "it must be a multiple of 2 (e.g. 6)")


@pytest.mark.gpu
@pytest.mark.parametrize("ranks", [1, 2])
def test_nccl_collectives_on_the_gpu(ranks, tmp_path, require_cupy):
    """NCCL on one GPU: a world of 1, and 2 ranks sharing it (NCCL_MULTI_RANK_GPU_ENABLE=1, NCCL 2.30+)."""
    pytest.importorskip("cupy.cuda.nccl", reason="CuPy without NCCL (pip install nvidia-nccl-cu12 / -cu13)")
    env = {**environment(), "NCCL_MULTI_RANK_GPU_ENABLE": "1"}
    out = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, JOBS, "nccl", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    got = np.load(tmp_path / "nccl.npz")
    assert list(got["names"]) == ["nccl"] * ranks
    base = np.arange(1000, dtype=np.float32)
    total = base * sum(r + 1 for r in range(ranks))
    for rank in range(ranks):
        np.testing.assert_array_equal(got["sum"][rank], total)
        np.testing.assert_allclose(got["mean"][rank], total / ranks, rtol=1e-7)
        np.testing.assert_array_equal(got["max"][rank], base * ranks)
        np.testing.assert_allclose(got["bf16_mean"][rank], total / ranks, rtol=2 * 2.0**-8)   # two roundings
        assert got["counts"][rank][0] == sum(r + 1 for r in range(ranks))
        np.testing.assert_array_equal(got["broadcast"][rank], (base * ranks)[::-1])      # from the last rank
