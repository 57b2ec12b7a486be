"""minidl.save / minidl.load, checkpoints in safetensors, and files that cannot run code.

A file the program reads must never run code. The hostile file of these tests is a pickle whose
``__reduce__`` creates a file when it is unpickled: each reader (checkpoints, the image-folder cache,
CIFAR batches) must refuse it with a clear error, and the file must not appear.
"""
import io
import os
import re
import tarfile

import numpy as np
import pytest

import minidl
from minidl import backends
from minidl import data as mdata
from minidl.data import safe_pickle
from minidl.serialization import SerializationError
from minidl.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_identical(a, b, where="obj"):
    """a and b are the same structure: same types (tuple stays tuple, int stays int), arrays equal in dtype too."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=where)
        return
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), f"{where}: {type(a)} vs {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert type(k) is type(next(x for x in b if x == k)), f"{where}: key {k!r}"
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and (a == b or (np.isnan(a) and np.isnan(b))), where
    else:
        assert a == b, where
        if isinstance(a, float):
            assert np.copysign(1.0, a) == np.copysign(1.0, b), f"{where}: sign of zero"


def round_trip(obj, tmp_path, name="x.safetensors"):
    minidl.save(obj, tmp_path / name)
    return minidl.load(tmp_path / name, map_location="numpy")


DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"]


def test_every_dtype_and_odd_shape_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for name in DTYPES:
        dtype = np.dtype(name)
        if dtype.kind == "f":
            values = rng.standard_normal((3, 5)).astype(dtype)
            values[0, :3] = [np.inf, -np.inf, np.nan]
            values[1, 0] = -0.0
        elif dtype.kind == "b":
            values = rng.random((3, 5)) > 0.5
        else:
            info = np.iinfo(dtype)
            values = rng.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True)
            values[0, :2] = [info.min, info.max]
        arrays[name] = values
    base = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    arrays.update({
        "scalar": np.array(2.5), "scalar_int": np.array(7, np.int64), "empty": np.zeros((0, 3), np.float32),
        "strided": base[:, ::2, 1:, ::3],                        # a view whose bytes are not its values in order
        "channels_last": base.transpose(0, 3, 1, 2),             # minidl's activation layout
        "fortran": np.asfortranarray(base[0]),
        "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
    })
    back = round_trip(arrays, tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "x.safetensors").st_mode & 0o777 == 0o666 & ~mask, "the usual permissions, not 0600"
    for name, array in arrays.items():
        got = back[name]
        assert got.shape == array.shape, name
        assert got.dtype == array.dtype.newbyteorder("="), name     # stored little-endian, read natively
        np.testing.assert_array_equal(got, array, err_msg=name)
        if array.dtype.kind == "f":
            np.testing.assert_array_equal(np.signbit(got), np.signbit(array), err_msg=name)
        assert got.flags.c_contiguous and got.flags.writeable


def test_python_values_and_containers_round_trip_with_their_types(tmp_path):
    obj = {
        "none": None, "true": True, "false": False, "int": 3, "huge": 2 ** 200, "negative_huge": -(2 ** 100),
        "float": 0.1, "third": 1 / 3, "tiny": 5e-324, "inf": float("inf"), "-inf": float("-inf"),
        "nan": float("nan"), "-0": -0.0, "text": "ünïcode ✓", "empty": "", "list": [1, [2, [3.5]], []],
        "tuple": (0.9, 0.999), "nested_tuple": ((1, 2), [3, (4,)]),
        "int_keys": {0: {"momentum": np.ones(2)}, 7: {}}, "mixed_keys": {"a": 1, 2: "b", None: 3, 1.5: 4},
        "dotted.key": {"a.b": np.zeros(1)}, "dotted": {"key": {"a": {"b": np.ones(1)}}},
        "numpy_scalars": [np.float32(1.5), np.float64(np.nan), np.int64(-3), np.uint8(255), np.bool_(True),
                          np.float16(0.1)],
    }
    assert_identical(obj, round_trip(obj, tmp_path))


def test_random_generator_states_round_trip_and_replay(tmp_path):
    """PCG64's state holds 128-bit Python ints; MT19937's a uint32 array: both come back and replay the draws."""
    states = {}
    for name in ("PCG64", "MT19937", "Philox", "SFC64"):
        rng = np.random.Generator(getattr(np.random, name)(123))
        rng.random(7)
        states[name] = rng.bit_generator.state
    states["minidl"] = minidl.random.get_state()
    back = round_trip(states, tmp_path)
    assert_identical(states, back)
    assert back["PCG64"]["state"]["state"] > 2 ** 64          # a 128-bit integer survived JSON
    for name in ("PCG64", "MT19937", "Philox", "SFC64"):
        a, b = np.random.Generator(getattr(np.random, name)()), np.random.Generator(getattr(np.random, name)())
        a.bit_generator.state, b.bit_generator.state = states[name], back[name]
        np.testing.assert_array_equal(a.random(5), b.random(5))


def test_what_cannot_be_stored_is_refused_with_its_place_in_the_structure(tmp_path):
    state = {"opt": {"groups": [{"lr": 0.1, "fn": len}]}}
    with pytest.raises(TypeError, match=re.escape("cannot store state['opt']['groups'][0]['fn'], a "
                                                  "builtin_function_or_method")):
        minidl.save(state, tmp_path / "x.safetensors", name="state")
    cases = [({"s": {1, 2}}, r"obj\['s'\], a set"), ([b"raw"], r"obj\[0\], a bytes"),
             ({"a": np.array([object()])}, r"obj\['a'\], an array of dtype object"),
             ({"c": np.ones(2, np.complex64)}, r"obj\['c'\], an array of dtype complex64"),
             ({(1, 2): 3}, r"a key \(1, 2\) of type tuple"), ({"m": minidl.tensor([1.0])}, r"obj\['m'\], a Tensor")]
    for obj, message in cases:
        with pytest.raises(TypeError, match=message):
            minidl.save(obj, tmp_path / "x.safetensors")
    assert os.listdir(tmp_path) == [], "a refused save writes nothing"


def test_arrays_are_plain_safetensors_tensors_named_by_their_path(tmp_path):
    from safetensors.numpy import load_file
    model = {"conv.weight": np.ones((2, 3, 1, 1), np.float32), "bn.running_var": np.arange(2.0)}
    minidl.save({"model": model, "step": 3, "order": [np.arange(4)]}, tmp_path / "c.safetensors")
    tensors = load_file(str(tmp_path / "c.safetensors"))
    assert sorted(tensors) == ["model.bn.running_var", "model.conv.weight", "order.0"]
    for name, array in model.items():
        assert_identical(array, tensors[f"model.{name}"])


def test_load_errors_are_clear(tmp_path):
    from safetensors.numpy import save_file
    with pytest.raises(FileNotFoundError, match="no file at"):
        minidl.load(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 3 + b"not a safetensors file at all")
    with pytest.raises(SerializationError, match="not a safetensors file"):
        minidl.load(garbage)
    good = tmp_path / "good.safetensors"
    minidl.save({"w": np.arange(1000.0), "n": 1}, good)
    raw = good.read_bytes()
    for cut in (len(raw) - 8, len(raw) // 2, 20):
        truncated = tmp_path / f"cut{cut}.safetensors"
        truncated.write_bytes(raw[:cut])
        with pytest.raises(SerializationError):
            minidl.load(truncated)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2)}, str(foreign))
    with pytest.raises(SerializationError, match="not written by minidl.save.*safetensors.numpy.load_file"):
        minidl.load(foreign)
    with pytest.raises(minidl.BackendError, match="unknown backend"):
        minidl.load(good, map_location="tpu")


def test_load_puts_arrays_on_the_active_backend(tmp_path, backend):
    minidl.save({"w": minidl.backends.to_backend(np.arange(3.0))}, tmp_path / "w.safetensors")   # from this backend
    loaded = minidl.load(tmp_path / "w.safetensors")
    assert backends.backend_of(loaded["w"]) == backend
    assert backends.backend_of(minidl.load(tmp_path / "w.safetensors", map_location="numpy")["w"]) == "numpy"
    np.testing.assert_array_equal(backends.to_numpy(loaded["w"]), np.arange(3.0))


# -- checkpoints -------------------------------------------------------------------------------------
def test_a_training_checkpoint_round_trips_exactly(tmp_path):
    from test_train import run_fit
    run_fit(tmp_path / "run", 1)
    path = tmp_path / "run" / "checkpoint.safetensors"
    state = load_checkpoint(path)
    assert {"model", "optimizer", "schedules", "random", "config", "epoch_state", "extra"} <= set(state)
    assert isinstance(next(iter(state["optimizer"]["state"])), int), "parameter positions stay ints"
    save_checkpoint(tmp_path / "again.safetensors", state)
    assert_identical(state, load_checkpoint(tmp_path / "again.safetensors"))


class CreatesAFile:
    """Unpickling this creates the file at ``path``: what a hostile pickle could do (or worse)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def hostile_pickle(marker, protocol=4) -> bytes:
    import pickle
    raw = pickle.dumps({b"data": CreatesAFile(marker), b"labels": [0]}, protocol=protocol)
    assert not os.path.exists(marker)
    return raw


def test_a_hostile_pickle_as_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys, monkeypatch):
    from test_recipe import load_script, make_png_tar
    from minidl.train.recipe import run
    marker = tmp_path / "pwned"
    for name in ("checkpoint.safetensors", "checkpoint.pkl"):
        path = tmp_path / name
        path.write_bytes(hostile_pickle(marker))
        with pytest.raises(CheckpointError, match=re.escape("python -m minidl.convert_checkpoint")) as caught:
            load_checkpoint(path)
        assert "old pickle format" in str(caught.value) and "\n" not in str(caught.value)
        assert not marker.exists()
    # from the command line: --resume on it is one line on stderr and exit status 2, no traceback
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=2)
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pkl").write_bytes(hostile_pickle(marker))          # a run folder from before the change
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run(load_script("train_nin_cifar10").CIFAR10, ["--data", str(data), "--backend", "numpy", "--width", "0.05",
                                                       "--out", str(out), "--quiet", "--resume"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "convert_checkpoint" in err[0], err
    assert not marker.exists()
    garbage = out / "checkpoint.safetensors"
    garbage.write_bytes(b"\x89PNG not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable minidl checkpoint.*not a safetensors file"):
        load_checkpoint(garbage)


def test_the_converter_needs_trusted_and_then_converts(tmp_path, capsys):
    import pickle
    from minidl.convert_checkpoint import main
    old = tmp_path / "checkpoint.pkl"
    state = {"format_version": 1, "config": {"width": 0.5}, "model": {"w": np.arange(4.0)}, "epochs_done": 2,
             "random": minidl.random.get_state()}
    old.write_bytes(pickle.dumps(state))
    assert main([str(old)]) == 2
    err = capsys.readouterr().err
    assert "runs any code" in err and "--trusted" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "checkpoint.safetensors").exists()
    assert main([str(old), "--trusted"]) == 0
    converted = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert_identical({**state, "format_version": 2}, converted)
    assert main([str(old), "--trusted"]) == 2 and "exists already" in capsys.readouterr().err
    not_pickle = tmp_path / "x.bin"
    not_pickle.write_bytes(b"hello")
    assert main([str(not_pickle), "--trusted"]) == 2 and "not a pickle" in capsys.readouterr().err


def test_the_converter_writes_in_which_script_made_an_old_run(tmp_path):
    """Configs of before --dataset do not say it: MNIST's first convolution sees 1 channel, CIFAR-10's 3."""
    import pickle
    from minidl.convert_checkpoint import main
    from minidl.models import NIN
    from minidl.train.loop import upgrade_config
    for channels, dataset in ((1, "mnist"), (3, "cifar10")):
        folder = tmp_path / dataset
        folder.mkdir()
        model = {k: np.asarray(v) for k, v in NIN(in_channels=channels, width=0.1).state_dict().items()}
        state = {"format_version": 1, "config": {"init": "he", "width": 0.1}, "model": model, "epochs_done": 1}
        (folder / "checkpoint.pkl").write_bytes(pickle.dumps(state))
        assert main([str(folder / "checkpoint.pkl"), "--trusted"]) == 0
        config = load_checkpoint(folder / "checkpoint.safetensors")["config"]
        assert config == {"init": "he", "width": 0.1, "dataset": dataset}
        assert upgrade_config(config)["dataset"] == dataset


# -- numpy files and the CIFAR batches -----------------------------------------------------------------
def test_every_np_load_in_the_package_refuses_pickles():
    calls = []
    for folder, _, files in os.walk(os.path.join(ROOT, "minidl")):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                calls += [(name, call) for call in re.findall(r"np\.load\((.*?)\)", text)]
    assert calls, "the image-folder cache uses np.load"
    for name, call in calls:
        assert "allow_pickle=False" in call, f"{name}: np.load({call}) must pass allow_pickle=False"


def test_a_hostile_pickle_as_npz_cache_is_refused_and_runs_nothing(tmp_path):
    from minidl.data.image_folder import _load_cache
    marker = tmp_path / "pwned"
    raw_pickle = tmp_path / "cache-raw.npz"
    raw_pickle.write_bytes(hostile_pickle(marker))
    inside_npz = tmp_path / "cache-object.npz"                 # an object array inside a real .npz pickles too
    np.savez(inside_npz, train_images=np.array([CreatesAFile(marker)], dtype=object),
             train_labels=np.zeros(1), test_images=np.zeros(1), test_labels=np.zeros(1), classes=np.array(["a"]))
    for path in (raw_pickle, inside_npz):
        with pytest.warns(UserWarning, match="ignoring the unreadable cache.*(pickled|allow_pickle=False)"):
            assert _load_cache(str(path)) is None
        assert not marker.exists()


def test_a_hostile_pickle_as_cifar_batch_is_refused_and_runs_nothing(tmp_path):
    import pickle
    marker = tmp_path / "pwned"
    for protocol in (2, 4, 5):
        archive = tmp_path / f"cifar-{protocol}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for name in ["batches.meta", "data_batch_1"]:
                raw = hostile_pickle(marker, protocol) if name == "data_batch_1" else \
                    pickle.dumps({b"label_names": [b"cat"]}, protocol=protocol)
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        with pytest.raises(ValueError, match=r"refused .*data_batch_1: the pickle asks for (_?io|builtins)\.open"):
            mdata.load_cifar10(archive, download=False)
        assert not marker.exists()


def test_the_restricted_unpickler_reads_what_cifar_files_hold_in_every_protocol():
    import pickle
    rows = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    batch = {b"batch_label": b"training batch 1 of 5", b"data": rows, b"labels": [3, 1, 4, 1],
             b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png"], b"fine_labels": np.arange(4),
             b"num_cases_per_batch": 10000, b"fortran": np.asfortranarray(rows[:2, :6])}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert_identical(batch, safe_pickle.loads(pickle.dumps(batch, protocol=protocol)))


@pytest.mark.parametrize("payload, refused", [
    (np.zeros(3, np.float64), "dtype 'f8'"),
    (np.array([None]), "dtype 'O8'"),
    (np.zeros(2, ">i8"), "byte order|state"),
    ({"f": os.system}, "posix.system|nt.system"),
    (np.random.default_rng(0), "numpy.random"),
])
def test_the_restricted_unpickler_refuses_everything_else(payload, refused):
    import pickle
    for protocol in (2, 4, 5):
        with pytest.raises(safe_pickle.UnsafePickleError, match=refused):
            safe_pickle.loads(pickle.dumps(payload, protocol=protocol), "batch")
