"""minidl.distributed in one process: bf16 rounding, buckets, sharding, sync batch norm (gradcheck),
the weight check, launch detection. The jobs on 2 MPI ranks are in test_distributed_mpi.py."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minidl
from minidl import distributed, nn
from minidl import functional as F
from minidl.distributed import compression, sharding
from minidl.distributed.communicator import SingleProcessCommunicator
from minidl.distributed.data_parallel import make_buckets
from minidl.distributed.replicas import ReplicasDiverged, check_replicas_agree
from minidl.distributed.sync_batchnorm import SyncBatchNorm2dFunction
from minidl.distributed.training import check_same_world, rank_seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TwoRankStub(SingleProcessCommunicator):
    """Rank 0 of a pretend world of 2 whose other rank holds ``other(array)``: records every collective."""

    def __init__(self, other=lambda a: 3 * a):
        self.size, self.other, self.calls = 2, other, []

    def all_reduce(self, array, op="sum", compression=None):
        self.calls.append((op, array.size))
        total = array + self.other(array)
        array[...] = total / 2 if op == "mean" else (np.maximum(array, self.other(array)) if op == "max" else
                                                       np.minimum(array, self.other(array)) if op == "min" else total)
        return array


# -- bf16 / fp16 --------------------------------------------------------------------------------------
def nearest_bfloat16_reference(x):
    """The nearest bf16 of each float32, by comparing the two candidates in float64 (ties: even last bit)."""
    bits = x.view(np.uint32).astype(np.uint64)
    down = (bits & 0xFFFF0000).astype(np.uint32)
    up = (down.astype(np.uint64) + 0x10000).astype(np.uint32)
    lo = down.view(np.float32).astype(np.float64)
    hi = np.where(up == 0x7F800000, np.inf, up.view(np.float32).astype(np.float64))   # overflow to infinity
    hi = np.where(up == 0xFF800000, -np.inf, hi)
    xd = x.astype(np.float64)
    d_lo, d_hi = np.abs(xd - lo), np.abs(hi - xd)
    even_down = ((down >> 16) & 1) == 0
    pick_up = (d_hi < d_lo) | ((d_hi == d_lo) & ~even_down)
    return np.where(pick_up, up >> 16, down >> 16).astype(np.uint16)


def test_bfloat16_is_round_to_nearest_even(rng):
    x = np.concatenate([(rng.standard_normal(20000) * 10.0 ** rng.integers(-30, 30, 20000)).astype(np.float32),
                        np.array([0.0, -0.0, 1.0, np.finfo(np.float32).tiny, 1e-45, 3.0e38], dtype=np.float32)])
    ties = (rng.integers(0, 2**15, 1000, dtype=np.uint32) << 16 | 0x8000).view(np.float32)   # exactly half-way
    x = np.concatenate([x, ties[np.isfinite(ties)]])
    np.testing.assert_array_equal(compression.float32_to_bfloat16(x), nearest_bfloat16_reference(x))
    back = compression.bfloat16_to_float32(compression.float32_to_bfloat16(x))
    normal = np.abs(x) > np.finfo(np.float32).tiny
    assert np.all(np.abs(back[normal] - x[normal]) <= 2.0**-8 * np.abs(x[normal]))   # half an ulp: 8 significant bits


def test_bfloat16_special_values():
    x = np.array([np.inf, -np.inf, np.nan, np.finfo(np.float32).max, -np.finfo(np.float32).max], dtype=np.float32)
    back = compression.bfloat16_to_float32(compression.float32_to_bfloat16(x))
    assert back[0] == np.inf and back[1] == -np.inf and np.isnan(back[2])
    assert back[3] == np.inf and back[4] == -np.inf          # above bf16's largest + half an ulp: rounds to infinity


def test_bfloat16_matches_torch(rng):
    torch = pytest.importorskip("torch", reason="torch is optional (the reference bf16 conversion)")
    x = rng.standard_normal(10000).astype(np.float32) * 1e3
    expected = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(compression.float32_to_bfloat16(x), expected)


def test_fp16_round_trip_and_compressed_sum(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(compression.round_trip(x, "fp16"), x.astype(np.float16).astype(np.float32))
    a, b = (compression.compress(v, "bf16") for v in (x, 2 * x))
    np.testing.assert_array_equal(compression.sum_compressed(a, b, "bf16"),
                                  compression.float32_to_bfloat16(compression.bfloat16_to_float32(a)
                                                                  + compression.bfloat16_to_float32(b)))
    with pytest.raises(ValueError, match="compression must be None, 'bf16' or 'fp16', got 'int8'"):
        distributed.DistributedDataParallel(nn.Linear(2, 2), compression="int8")


# -- buckets and DistributedDataParallel --------------------------------------------------------------
def test_buckets_respect_the_cap_dtype_and_reverse_order():
    model = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 30), nn.Linear(30, 5))
    params = list(model.parameters())                   # sizes 200, 20, 600, 30, 150, 5
    buckets = make_buckets(params, cap_bytes=4 * 640)   # at most 640 float32 values a bucket
    assert [[p.size for p in b.params] for b in buckets] == [[5, 150, 30], [600, 20], [200]]
    assert [p for b in buckets for p in b.params] == params[::-1]
    params[0].data = params[0].data.astype(np.float64)
    assert [b.params[0].data.dtype for b in make_buckets(params, 10**9)] == [np.float32, np.float64]


def test_ddp_averages_after_backward_with_one_collective_per_bucket(rng):
    model = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 3))
    stub = TwoRankStub(other=lambda a: 3 * a)            # the other rank's gradient: 3x this rank's
    ddp = distributed.DistributedDataParallel(model, communicator=stub, bucket_cap_mb=4 * 30 / 2**20)
    assert len(ddp.buckets) == 3
    x = minidl.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    loss = F.softmax_cross_entropy(ddp(x), np.array([0, 1, 2, 0]))
    loss.backward()
    assert [c for c in stub.calls] == [("mean", b.size) for b in ddp.buckets]        # one collective per bucket
    local = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 3))
    local.load_state_dict(model.state_dict())
    F.softmax_cross_entropy(local(x), np.array([0, 1, 2, 0])).backward()
    for p, q in zip(model.parameters(), local.parameters()):
        np.testing.assert_allclose(p.grad, 2 * q.grad, rtol=1e-6, atol=1e-7)     # mean of g and 3 g
    stub.calls.clear()
    with minidl.no_grad():
        ddp(x)
    ddp.eval()
    F.softmax_cross_entropy(ddp(x), np.array([0, 1, 2, 0]))
    assert stub.calls == [], "no reduction is queued without grad mode or in eval mode"


def test_queued_callback_is_dropped_when_backward_fails():
    from minidl.engine.backward import _queued_callbacks, queue_callback
    from minidl.engine.function import Function

    class Boom(Function):
        def forward(self, x):
            return x * 1

        def backward(self, gy):
            raise RuntimeError("boom")
    ran = []
    queue_callback(lambda: ran.append(1))
    x = minidl.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="boom"):
        Boom()(x).sum().backward()
    assert ran == [] and _queued_callbacks == []
    queue_callback(lambda: ran.append(2))
    (x * 2).sum().backward()
    assert ran == [2]


def test_world_of_one_changes_nothing(rng):
    model = nn.Linear(4, 2)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    ddp = distributed.DistributedDataParallel(model, communicator=SingleProcessCommunicator())
    x = minidl.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    F.softmax_cross_entropy(ddp(x), np.array([0, 1, 0])).backward()
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    F.softmax_cross_entropy(model(x), np.array([0, 1, 0])).backward()
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_array_equal(g, p.grad)
    assert all(np.array_equal(before[k], v) for k, v in ddp.state_dict().items())


# -- sharding -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3])
def test_training_shards_partition_each_batch(world):
    order = np.random.default_rng(0).permutation(50)
    batches = [order[i:i + 12] for i in range(0, 50, 12)]                    # 12, 12, 12, 12, 2
    trimmed = sharding.trim_batches(batches, world)
    parts = [[sharding.local_part(b, r, world) for b in trimmed] for r in range(world)]
    for k, b in enumerate(trimmed):
        assert len(b) % world == 0 and len({len(p[k]) for p in parts}) == 1
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), b)
    used = np.concatenate(trimmed)
    assert len(np.unique(used)) == len(used) and 50 - len(used) < world * len(batches)
    assert sum(len(b) for b in trimmed) == 48 + (2 if world in (1, 2) else 0)


def test_evaluation_shards_count_every_image_once():
    for count, world in [(21, 2), (5, 3), (2, 4)]:
        shards = [sharding.evaluation_shard(count, r, world) for r in range(world)]
        np.testing.assert_array_equal(np.concatenate(shards), np.arange(count))


def test_global_batch_must_split_over_the_ranks():
    sharding.check_global_batch(128, 4)
    with pytest.raises(ValueError, match="--batch-size 100 is the global batch, split over 3 ranks: "
                                         "it must be a multiple of 3"):
        sharding.check_global_batch(100, 3)


# -- sync batch norm ---------------------------------------------------------------------------------------
def test_sync_batchnorm_in_a_world_of_one_is_batch_norm(rng):
    x = (rng.standard_normal((3, 4, 5, 2)) * 3 + 2).astype(np.float64)
    bn = nn.BatchNorm2d(4)
    sync = distributed.SyncBatchNorm(4, communicator=SingleProcessCommunicator())
    for m in (bn, sync):
        m.weight.data = np.linspace(0.5, 2, 4)
        m.bias.data = np.linspace(-1, 1, 4)
        for name in ("running_mean", "running_var"):
            m.set_buffer(name, m._buffers[name].astype(np.float64))
    g = rng.standard_normal(x.shape)
    outs = []
    for m in (bn, sync):
        xt = minidl.tensor(x, requires_grad=True)
        y = m(xt)
        y.backward(g)
        outs.append([y.data, xt.grad, m.weight.grad, m.bias.grad, m.running_mean, m.running_var])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_sync_batchnorm_gradcheck(rng):
    x = minidl.tensor(rng.standard_normal((2, 3, 3, 5)) * 2 + 1, requires_grad=True)     # awkward sizes
    w = minidl.tensor(rng.standard_normal(3), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(3), requires_grad=True)

    def fn(x, w, b):
        return SyncBatchNorm2dFunction(None, None, 0.1, 1e-5, SingleProcessCommunicator())(x, w, b)
    assert minidl.gradcheck(fn, [x, w, b])


def test_convert_sync_batchnorm_keeps_parameters_and_keys():
    from minidl.models import NIN
    model = NIN(num_classes=3, width=0.05, batch_norm=True)
    keys, params = list(model.state_dict()), list(model.parameters())
    distributed.convert_sync_batchnorm(model)
    assert list(model.state_dict()) == keys and all(p is q for p, q in zip(model.parameters(), params))
    kinds = {type(m).__name__ for m in model.modules()}
    assert "SyncBatchNorm" in kinds and "BatchNorm2d" not in kinds


# -- weight check, resume, launch --------------------------------------------------------------------------
def test_replica_check_names_the_first_differing_parameter():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    check_replicas_agree(model, TwoRankStub(other=lambda a: a))                  # the same weights: silent
    with pytest.raises(ReplicasDiverged, match=r"1 of 4 parameters differ, first 1\.weight"):
        def other(a):
            a = a.copy()
            a[:, 2] += 1e-9
            return a
        check_replicas_agree(model, TwoRankStub(other=other))


def test_resume_needs_the_same_number_of_ranks():
    check_same_world(None, 1)
    check_same_world({"world_size": 2, "random": [None, None]}, 2)
    with pytest.raises(ValueError, match=r"written by a job of 2 rank\(s\), this one has 1; resume with mpiexec -n 2"):
        check_same_world({"world_size": 2, "random": [None, None]}, 1)
    with pytest.raises(ValueError, match=r"written by a job of 1 rank\(s\), this one has 4; resume with a single"):
        check_same_world(None, 4)


def test_rank_seeds():
    assert rank_seed(5, 0) == 5
    seeds = {rank_seed(5, r) for r in range(1, 9)} | {rank_seed(6, r) for r in range(1, 9)}
    assert len(seeds) == 16 and all(0 <= s < 2**63 for s in seeds)


def test_launch_detection_from_the_environment():
    assert not distributed.launched_by_mpi({"HOME": "/root"})
    assert distributed.launched_by_mpi({"PMI_RANK": "1"}) and distributed.launched_by_mpi({"OMPI_COMM_WORLD_RANK": "0"})
    assert distributed.local_rank({"MPI_LOCALRANKID": "3"}) == 3
    assert distributed.local_rank({"OMPI_COMM_WORLD_LOCAL_RANK": "2"}) == 2 and distributed.local_rank({}) == 0


def test_a_single_process_never_imports_mpi4py():
    env = {k: v for k, v in os.environ.items() if not distributed.launched_by_mpi({k: v})}
    env["PYTHONPATH"] = ROOT
    code = ("import sys, minidl.distributed as d; c = d.init(); assert d.init() is c and d.is_initialized(); "
            "assert (d.get_rank(), d.get_world_size()) == (0, 1); d.barrier(); "
            "assert 'mpi4py' not in sys.modules, 'imported mpi4py'; print(type(c).__name__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SingleProcessCommunicator"


def test_init_rejects_an_unknown_backend():
    with pytest.raises(ValueError, match="init: backend must be one of 'auto', 'mpi', 'nccl', got 'gloo'"):
        distributed.init("gloo")


def test_sync_bn_option_needs_batch_norm(capsys):
    from minidl.train.recipe import parse_config
    from test_recipe import load_script
    task = load_script("train_nin_cifar10").CIFAR10
    with pytest.raises(SystemExit) as exc:
        parse_config(task, ["--sync-bn"])
    assert exc.value.code == 2 and "--sync-bn synchronizes batch norm: it needs --batch-norm" in capsys.readouterr().err
    assert parse_config(task, ["--sync-bn", "--batch-norm", "--grad-compression", "bf16"])["grad_compression"] == "bf16"


# -- faults ---------------------------------------------------------------------------------------------------
class Aborted(Exception):
    pass


class AbortRecorder(TwoRankStub):
    def abort(self, code=1):
        self.aborted = code
        raise Aborted(code)


@pytest.mark.parametrize("error, code", [(RuntimeError("boom"), 1), (SystemExit(2), 2), (SystemExit("bad data"), 1)])
def test_an_error_inside_abort_on_error_aborts_every_rank(error, code, capsys):
    stub = AbortRecorder()
    with pytest.raises(Aborted):
        with distributed.abort_on_error(stub):
            raise error
    assert stub.aborted == code
    err = capsys.readouterr().err
    assert "[rank 0/2]" in err and "aborting the whole job" in err
    if isinstance(error, RuntimeError):
        assert "[rank 0/2] RuntimeError: boom" in err


@pytest.mark.parametrize("error", [SystemExit(0), SystemExit(None), SystemExit(130), KeyboardInterrupt()])
def test_agreed_exits_pass_through_abort_on_error(error):
    stub = AbortRecorder()
    with pytest.raises(type(error)):
        with distributed.abort_on_error(stub):
            raise error
    assert not hasattr(stub, "aborted")


def test_a_world_of_one_keeps_its_errors():
    with pytest.raises(SystemExit):
        with distributed.abort_on_error(SingleProcessCommunicator()):
            sys.exit(2)


def test_the_excepthook_reports_and_aborts(monkeypatch, capsys):
    stub = AbortRecorder()
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)       # restored after the test
    distributed.install_excepthook(stub)
    try:
        raise ValueError("on one rank")
    except ValueError:
        with pytest.raises(Aborted):
            sys.excepthook(*sys.exc_info())
    assert stub.aborted == 1 and "[rank 0/2] ValueError: on one rank" in capsys.readouterr().err


def test_the_script_refuses_to_resume_a_run_of_two_ranks_alone(tmp_path, monkeypatch, capsys):
    from minidl.train.checkpoint import load_checkpoint, save_checkpoint
    from minidl.train.recipe import run
    from test_recipe import load_script, make_png_tar
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))
    task = load_script("train_nin_cifar10").CIFAR10
    make_png_tar(tmp_path / "toy.tar.gz")
    args = ["--data", str(tmp_path / "toy.tar.gz"), "--backend", "numpy", "--width", "0.05", "--batch-size", "6",
            "--out", str(tmp_path / "run"), "--quiet", "--schedule", "plateau", "--epochs", "1"]
    assert run(task, args)["world_size"] == 1
    path = tmp_path / "run" / "checkpoint.safetensors"
    state = load_checkpoint(path)
    state.pop("format_version", None)
    state["distributed"] = {"world_size": 2, "random": [state["random"], state["random"]]}   # as 2 ranks write it
    save_checkpoint(path, state)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run(task, args[:-1] + ["2", "--resume"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert "written by a job of 2 rank(s), this one has 1; resume with mpiexec -n 2" in err
