"""The NIN training recipe behind examples/train_nin.py (and its aliases train_nin_cifar10.py, train_nin_mnist.py).

It turns command-line options into a data pipeline, a model, an optimizer
and a learning-rate schedule, then calls :func:`minidl.train.fit`. Every
option has a sensible default; ``--quick`` is a preset for a 2-core CPU. What differs between the
data sets (``--dataset``) is one table, :data:`minidl.train.tasks.TASKS`.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np

from .. import backends
from .. import data as mdata
from .. import distributed, nn, optim
from ..kernels.host_memory import keep_freed_memory
from ..models import NIN
from ..models.nin import HEADS
from .checkpoint import load_checkpoint, resumable_checkpoint
from .export import export_run, model_facts, write_model_file
from .loop import Interrupted, TrainingDiverged, check_same_config, checkpoint_path, existing_run_files, fit, upgrade_config
from .report import write_json
from .tasks import TASKS, Task, get_task   # noqa: F401  (Task: the name the example scripts import)


class OptionParser(argparse.ArgumentParser):
    """argparse's parser, with every error as one line on stderr and exit status 2 (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(message: str) -> None:
    """Stop the script on an error the user can fix: one line on stderr, exit status 2, no traceback."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)     # one line, whatever it quotes
    sys.exit(2)


def build_parser(task: Task) -> argparse.ArgumentParser:
    d = task.defaults
    p = OptionParser(
        description=f"Train Network In Network on {task.title or task.name} with minidl.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False)             # parse_config must see which options were given, by their full names
    p.add_argument("--dataset", choices=list(TASKS), default=task.name,
                   help="which of the paper's data sets; it sets the defaults of the other options")
    p.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                   help="cifar100: the 100 fine classes or the 20 superclasses")
    p.add_argument("--extra", action="store_true",
                   help="svhn: train on train + extra (604,388 images) as the paper did, not train alone")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default="auto",
                   help="array backend; auto = CuPy when a GPU is usable, else NumPy")
    p.add_argument("--data", default=None,
                   help="data location: the official archive or its folder, or an image folder "
                        "(root/{train,test}/<class>/*.png|jpg) as a directory or .tar.gz; "
                        "default: download the official files into $MINIDL_DATA or ~/.cache/minidl")
    p.add_argument("--epochs", type=int, default=d["epochs"], help="total epochs (a resumed run counts those done)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="training minibatch size")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: 0.05, or 0.1 with --batch-norm; 0.001 for adam/adamw)")
    p.add_argument("--schedule", choices=["onecycle", "cosine", "step", "plateau", "constant"], default=d["schedule"],
                   help="onecycle: warm-up then cosine decay; plateau: divide by 10 when test accuracy stalls (the paper)")
    p.add_argument("--warmup", type=float, default=0.15,
                   help="onecycle: the fraction of all steps spent rising to the peak lr (PyTorch's default: 0.3)")
    p.add_argument("--cycle-momentum", action="store_true",
                   help="onecycle: move SGD's momentum 0.95 -> 0.85 -> 0.95 against the lr, in place of --momentum "
                        "(PyTorch's OneCycleLR does this by default)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd", help="the update rule")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True,
                   help="SGD: Nesterov momentum, or --no-nesterov for the classical (heavy-ball) kind")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"], help="L2 weight decay (decoupled for adamw)")
    p.add_argument("--bias-lr-mult", type=float, default=1.0,
                   help="learning rate of the 1-D parameters (biases, batch-norm scales and shifts) relative to "
                        "the weights' (the paper's Caffe model: 2)")
    p.add_argument("--bias-decay", action=argparse.BooleanOptionalAction, default=True,
                   help="weight decay on the 1-D parameters too (the paper's Caffe model: --no-bias-decay)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=d["augment"],
                   help=f"random translation (pad {task.augment_pad}, crop)"
                        f"{' and horizontal flip' if task.augment_flip else ''}")
    p.add_argument("--preprocess", choices=["standard", "gcn-zca", "lcn"], default=d.get("preprocess", "standard"),
                   help="standard: per-channel mean/std; gcn-zca: global contrast normalization + ZCA whitening "
                        "(the paper's for CIFAR); lcn: local contrast normalization (the paper's for SVHN)")
    p.add_argument("--batch-norm", action="store_true", help="BatchNorm after every convolution (modern NIN)")
    p.add_argument("--width", type=float, default=1.0, help="scale every hidden channel count")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout after the first two mlpconv blocks")
    p.add_argument("--init", type=init_scheme, default=d.get("init", "he"),
                   help="how every conv starts: he (He normal, zero bias), uniform (PyTorch's layer default, "
                        "U(+-1/sqrt(fan_in)) for weight and bias) or a number, a Gaussian std such as 0.05")
    p.add_argument("--head", choices=list(HEADS), default="gap",
                   help="the classifier: gap (global average pooling, the paper's NIN) or the fully connected "
                        "heads of its comparison, fc and fc-dropout")
    p.add_argument("--pool2", choices=["max", "avg"], default="max",
                   help="second pooling: max (the paper's table) or avg (its Caffe model)")
    p.add_argument("--subset", type=int, default=None, help="train on a random (seeded) subset of this many images")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, subset, shuffling, augmentation and dropout")
    p.add_argument("--out", default=f"runs/nin-{task.name}", help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its last checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run already in OUT (without it, an OUT holding a run is refused)")
    p.add_argument("--export", action="store_true",
                   help="write OUT/model.safetensors (and OUT/model.onnx with the onnx extra) from the run's "
                        "checkpoint, then exit (a finished run already has model.safetensors)")
    p.add_argument("--quick", action="store_true",
                   help="CPU preset: " + ", ".join(f"{k}={v}" for k, v in task.quick.items()))
    p.add_argument("--eval-batch-size", type=int, default=500, help="batch size of the test-set evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--sync-bn", action="store_true",
                   help="with --batch-norm on several ranks (mpiexec -n N): statistics of the global batch, "
                        "not of each rank's part")
    p.add_argument("--grad-compression", choices=["bf16", "fp16"], default=None,
                   help="on several ranks: average the gradients as 16-bit numbers (half the bytes to send)")
    p.add_argument("--tf32", action="store_true",
                   help="let CuPy's float32 matrix products use TF32 tensor cores (faster, ~1e-3 relative error; "
                        "PyTorch's default for convolutions); no effect on NumPy")
    return p


def init_scheme(text: str):
    """--init's value: "he", "uniform" or a positive number (a Gaussian std)."""
    try:
        return nn.init.check_scheme(text if text in nn.init.SCHEMES else float(text), "--init")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(nn.init.SCHEMES)} or a positive "
                                         f"Gaussian std, got {text!r}") from None


def _positive(value) -> bool:
    return math.isfinite(value) and value > 0


#: every numeric option's valid values, checked before any slow work: option -> (test, what it must be)
OPTION_RANGES = {
    "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "eval_batch_size": (lambda v: v >= 1, "at least 1"),
    "subset": (lambda v: v >= 1, "at least 1"),
    "seed": (lambda v: v >= 0, "at least 0"),
    "lr": (_positive, "a positive finite number"),
    "bias_lr_mult": (_positive, "a positive finite number"),
    "width": (_positive, "a positive finite number (the factor on every hidden channel count)"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1) (1 or more makes SGD diverge)"),
    "dropout": (lambda v: 0 <= v < 1, "a probability in [0, 1)"),
    "warmup": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
}


def resolve_task(task, argv=None) -> Task:
    """The Task to train: ``task`` itself (a Task or a name), or, when it is None, that of ``--dataset``
    in ``argv`` (default cifar10). An unknown name is left for the parser to reject with its usage line."""
    if task is not None:
        return get_task(task)
    argv = list(sys.argv[1:] if argv is None else argv)
    for position, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--dataset=") else (
            argv[position + 1] if arg == "--dataset" and position + 1 < len(argv) else None)
        if value in TASKS:
            return TASKS[value]
    return TASKS["cifar10"]


def parse_config(task, argv=None) -> dict:
    task = resolve_task(task, argv)
    parser = build_parser(task)
    args = parser.parse_args(argv)
    config = vars(args)
    given = {arg.split("=", 1)[0] for arg in (argv if argv is not None else sys.argv[1:])}   # "--lr=0.1" too
    explicit = {a.dest for a in parser._actions if any(s in given for s in a.option_strings)}
    if args.quick:                      # the preset fills in what the user did not set explicitly
        for key, value in task.quick.items():
            if key not in explicit:
                config[key] = value
    if config["lr"] is None:
        config["lr"] = 0.001 if config["optimizer"] in ("adam", "adamw") else (0.1 if config["batch_norm"] else 0.05)
    for key, (is_valid, expected) in OPTION_RANGES.items():
        value = config[key]
        if value is not None and not is_valid(value):          # NaN fails every comparison, so it fails here
            parser.error(f"--{key.replace('_', '-')} must be {expected}, got {value}")
    if config["resume"] and config["overwrite"]:
        parser.error("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if config["sync_bn"] and not config["batch_norm"]:
        parser.error("--sync-bn synchronizes batch norm: it needs --batch-norm")
    if config["export"] and (config["resume"] or config["overwrite"]):
        parser.error("--export writes the model files of the run in --out and trains nothing: "
                     "give it without --resume and --overwrite")
    if config["schedule"] != "onecycle":
        for dest in ("warmup", "cycle_momentum"):
            if dest in explicit:
                parser.error(f"--{dest.replace('_', '-')} belongs to --schedule onecycle, "
                             f"not --schedule {config['schedule']}")
    check_dataset_options(parser, task, config, explicit)
    return config


def check_dataset_options(parser, task: Task, config: dict, explicit: set) -> None:
    """--dataset must be the script's own, and a data set's own options (--labels, --extra) go with it."""
    if config["dataset"] != task.name:
        parser.error(f"--dataset {config['dataset']}: this script trains {task.name}; "
                     f"run examples/train_nin.py --dataset {config['dataset']}")
    for dest in ("labels", "extra"):
        if dest in explicit and dest not in task.options:
            owner = next(t.name for t in TASKS.values() if dest in t.options)
            parser.error(f"--{dest} belongs to --dataset {owner}, not --dataset {task.name}")


def load_data(task: Task, location, progress: bool = True, log=None, config: dict | None = None):
    """(train, test) ArrayDatasets from the official files or an image folder, as ``task.load`` reads them.

    ``log``: a function given a line saying where an image folder's images come from (decoded or cached).
    ``config``: the run's options; the data set's own (--labels, --extra) are read from it.
    """
    task = get_task(task)
    if task.load is None:
        return mdata.load_image_folder(location, progress=progress, log=log)
    return task.load(location, config or {}, progress, log)


def training_subset(train, config: dict):
    """The training set of ``--subset`` images drawn at random (seeded by ``--seed``), or all of it.

    A ``--subset`` larger than the training set is refused (ValueError) rather than quietly
    recorded in the run's summary as a number of images it never trained on.
    """
    if config["subset"] is not None and config["subset"] > len(train):
        raise ValueError(f"--subset {config['subset']} is more than the {len(train)} training images; "
                         f"give at most {len(train)}, or leave --subset out to train on all of them")
    if config["subset"] is not None and config["subset"] < len(train):
        return train.subset(config["subset"], np.random.default_rng(config["seed"]))
    return train


def new_preprocess(kind: str, progress: bool = True):
    """The unfitted preprocessing of ``--preprocess kind``: "standard", "gcn-zca" or "lcn"."""
    if kind == "standard":
        return mdata.Standardize()
    if kind == "lcn":
        return mdata.LocalContrastNormalize()
    return mdata.Compose([mdata.GlobalContrastNormalize(), mdata.ZCAWhitening(progress=progress)])


def build_preprocess(kind: str, train_images, progress: bool = True):
    """Fit the preprocessing on the training images only; it is then applied to both splits."""
    return new_preprocess(kind, progress).fit(mdata.to_float(train_images))


def apply_preprocess(kind: str, preprocess, train, test, progress: bool = True):
    """(train, test, per-batch transform): where the fitted preprocessing runs depends on its cost.

    The transform is deterministic and comes before the augmentation either way, so the batches are
    the same up to float rounding.

    * "standard" (per-channel mean/std) costs two elementwise operations a value: the loaders apply
      it to every batch, and the data sets keep their uint8 images, 4x smaller than float32.
    * "gcn-zca" costs a (N, D) @ (D, D) matrix product a batch (D = 3,072 for CIFAR-10), which
      dominated a CPU training step at small widths: it is applied once to both splits, a chunk at a
      time (:func:`minidl.data.apply_to_images`), the data sets hold the float32 result (614 MB for
      CIFAR-10's 50,000 training images) and the loaders get no transform.
    * "lcn" (a 2-D Gaussian filter, three times, on every image) is applied once the same way.
    """
    if kind == "standard":
        return train, test, preprocess
    whiten = functools.partial(mdata.apply_to_images, preprocess, progress=progress)
    name = {"gcn-zca": "GCN + ZCA", "lcn": "LCN"}[kind]
    train = mdata.ArrayDataset(whiten(train.images, desc=f"{name}: training images"), train.labels, train.classes)
    test = mdata.ArrayDataset(whiten(test.images, desc=f"{name}: test images"), test.labels, test.classes)
    return train, test, None


def build_model(task: Task, config: dict, train) -> NIN:
    """The NIN of ``config`` for the classes and channels of the training set."""
    return NIN(num_classes=len(train.classes), in_channels=train.images.shape[3], batch_norm=config["batch_norm"],
               dropout=config["dropout"], width=config["width"], pool2=config["pool2"], channels=task.channels,
               init=config["init"], head=config["head"], image_size=train.images.shape[1:3])


def parameter_groups(model, config) -> list:
    """One group with every parameter, or, with --bias-lr-mult / --no-bias-decay, two: the weights (conv
    kernels, matrices), then the 1-D parameters (biases, batch-norm scales and shifts) with their own lr
    and weight decay, as Caffe's lr_mult and decay_mult set them."""
    params = list(model.parameters())
    if config["bias_lr_mult"] == 1.0 and config["bias_decay"]:
        return [{"params": params}]
    return [{"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "lr": config["lr"] * config["bias_lr_mult"],
             "weight_decay": config["weight_decay"] if config["bias_decay"] else 0.0}]


def build_optimizer(model, config):
    params = parameter_groups(model, config)
    if config["optimizer"] == "sgd":
        return optim.SGD(params, lr=config["lr"], momentum=config["momentum"],
                         nesterov=config["nesterov"] and config["momentum"] > 0, weight_decay=config["weight_decay"])
    cls = optim.Adam if config["optimizer"] == "adam" else optim.AdamW
    return cls(params, lr=config["lr"], weight_decay=config["weight_decay"])


def build_schedules(optimizer, config, steps_per_epoch):
    """(per-batch schedule, per-epoch schedule, plateau schedule); at most one is not None."""
    total = config["epochs"] * steps_per_epoch
    kind = config["schedule"]
    if kind == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]      # the groups keep their ratio
        return optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total, pct_start=config["warmup"],
                                             cycle_momentum=config["cycle_momentum"]), None, None
    if kind == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), None, None
    if kind == "step":
        step = max(1, config["epochs"] // 3)
        return None, optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=0.1), None
    if kind == "plateau":
        return None, None, optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=5)
    return None, None, None


def check_output_folder(config: dict, world_size: int = 1) -> None:
    """Before any slow work: ``--out`` must be a writable folder that holds no other run.

    A folder that already holds a run is refused unless ``--resume`` (continue it: its checkpoint
    must be readable and made with the same options) or ``--overwrite`` (replace it) says so.
    Every failure ends the script with one line (:func:`fail`).
    """
    out = config["out"]
    if os.path.exists(out) and not os.path.isdir(out):
        fail(f"--out {out} is a file, not a folder; choose a folder for the run's files")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        fail(f"--out {out} is not a writable folder ({exc.strerror or exc}); choose another --out")
    if config["resume"]:
        try:
            checkpoint = resumable_checkpoint(out)          # an old checkpoint.pkl: CheckpointError
            if checkpoint is not None:
                saved = load_checkpoint(checkpoint)
                check_same_config(saved["config"], config)
                distributed.training.check_same_world(saved.get("distributed"), world_size)
        except (ValueError, KeyError, OSError) as exc:
            fail(str(exc))
    elif not config["overwrite"]:
        found = existing_run_files(out)
        if found:
            fail(f"--out {out} already holds a run ({', '.join(found)}); continue it with --resume, "
                 "write this one elsewhere with --out DIR, or replace it with --overwrite")


def run(task=None, argv=None) -> dict:
    """The training script: options -> data -> model -> :func:`fit` -> summary.json; returns the summary.

    task: a Task or its name, fixing the data set; None: that of ``--dataset`` in ``argv``.

    Every error the user can fix ends it with one line on stderr and exit status 2; Ctrl-C with
    exit status 130 (during training after saving the state, so that ``--resume`` continues).
    """
    try:
        return _run(task, argv)
    except Interrupted:                         # fit saved the state and said so
        sys.exit(130)
    except KeyboardInterrupt:
        print("\ninterrupted before training began; nothing was trained", file=sys.stderr)
        sys.exit(130)


def _run(task, argv=None) -> dict:
    task = resolve_task(task, argv)
    config = parse_config(task, argv)
    if config["export"]:
        return _export(task, config, print)
    try:
        backend = backends.set_backend(config["backend"])
    except backends.BackendError as exc:
        fail(str(exc))
    communicator = distributed.training.start_job(backend, config["batch_size"])    # started by mpiexec: N ranks
    if communicator.rank > 0:
        config["quiet"] = True                  # only rank 0 prints
    with distributed.abort_on_error(communicator):          # one rank's error ends every rank
        return _train(task, config, backend, communicator)


def _train(task: Task, config: dict, backend: str, communicator) -> dict:
    log = print if communicator.rank == 0 else (lambda *args, **kwargs: None)
    backends.set_tf32(config["tf32"])
    if backend == "numpy":
        keep_freed_memory()        # reuse warm host memory between steps (minidl/kernels/host_memory.py)
    if communicator.rank == 0:
        check_output_folder(config, communicator.size)
    distributed.seed_ranks(config["seed"], communicator)        # rank 0 (or a single process): the seed itself
    t0 = time.perf_counter()
    try:
        train, test = distributed.training.rank_zero_first(
            communicator, lambda: load_data(task, config["data"], progress=not config["quiet"], log=log,
                                                config=config))
        if train.images.shape[1:] != (task.input_shape[1], task.input_shape[2], task.input_shape[0]):
            log(f"note: images are {train.images.shape[1:]} (H, W, C); the model adapts to {train.images.shape[3]} channels")
    except (mdata.DownloadError, OSError, ValueError) as exc:
        fail(f"could not load the data: {exc}")
    try:
        train = training_subset(train, config)
    except ValueError as exc:
        fail(str(exc))
    preprocess = build_preprocess(config["preprocess"], train.images, progress=not config["quiet"])
    train, test, per_batch = apply_preprocess(config["preprocess"], preprocess, train, test, not config["quiet"])
    augment = task.augment() if config["augment"] else None
    train_loader = mdata.DataLoader(train, config["batch_size"], shuffle=True, transform=per_batch, augment=augment)
    test_loader = mdata.DataLoader(test, config["eval_batch_size"], shuffle=False, transform=per_batch)
    log(f"data: {len(train)} training and {len(test)} test images of {train.images.shape[1:]} "
        f"({len(train.classes)} classes), ready in {time.perf_counter() - t0:.1f} s; backend: {backend}")

    model = build_model(task, config, train)
    if config["sync_bn"]:
        distributed.convert_sync_batchnorm(model, communicator)
    parallel = None if communicator.size == 1 else distributed.DataParallelTraining(
        model, communicator, compression=config["grad_compression"], batch_size=config["batch_size"])
    log(f"model: NIN, {model.num_parameters():,} parameters, width {config['width']}"
        f"{', batch norm' if config['batch_norm'] else ''}{', head ' + config['head'] if config['head'] != 'gap' else ''}")
    if parallel is not None:
        log(f"data parallel: {communicator.size} ranks on {communicator.name.upper()}, "
            f"{config['batch_size'] // communicator.size} images per rank and step")
    optimizer = build_optimizer(model, config)
    schedules = build_schedules(optimizer, config, len(train_loader))
    started = time.perf_counter()
    try:
        summary = fit(model, optimizer, train_loader, test_loader, config["epochs"], config["out"],
                      {k: v for k, v in config.items()}, *schedules, resume=config["resume"],
                      overwrite=config["overwrite"],
                      extra_state={"preprocess": preprocess.state_dict(), **model_facts(train)},
                      show_progress=not config["quiet"], log=log, distributed=parallel)
    except TrainingDiverged as exc:
        fail(str(exc))
    except OSError as exc:                      # a full disk, a folder removed under the run
        fail(f"could not write the run's files in {config['out']} ({exc}); the last complete checkpoint "
             "there is kept: make room, then continue with --resume")
    summary.update(wall_seconds=time.perf_counter() - t0, run_seconds=time.perf_counter() - started,
                   machine=_machine(), date=time.strftime("%Y-%m-%d"))
    if communicator.rank == 0:
        write_json(os.path.join(config["out"], "summary.json"), summary)
        write_model_file(config["out"], model, train.classes, train.images.shape[1:3], preprocess)
    log(f"done: test accuracy {100 * summary['test_accuracy']:.2f}% after {summary['epochs']} epochs; "
        f"training {summary['train_seconds']:.0f} s in all at {summary['images_per_second']:.0f} img/s; "
        f"this run's wall time {summary['wall_seconds']:.0f} s; results in {config['out']}")
    return summary


def restore_run(task, run_dir, data=None, progress: bool = True) -> dict:
    """A finished (or stopped) run, ready to use: its trained model, fitted preprocessing and data.

    Reads ``run_dir/checkpoint.safetensors``, rebuilds the NIN of the run's config on the active backend and
    loads its weights (in eval mode). The fitted preprocessing comes from the checkpoint; a checkpoint
    written before it was stored there (2026-11-24) gets it fitted again exactly as the run did.
    ``data``: where the data set is now, if not at the run's ``--data``.
    ``task``: the run's Task or its name; None takes the run's ``--dataset`` from its config.
    Returns a dict: model, preprocess, train, test (uint8 images, not preprocessed), config.
    """
    checkpoint = load_checkpoint(checkpoint_path(run_dir))
    config = upgrade_config(checkpoint["config"])
    task = get_task(config["dataset"] if task is None else task)
    train, test = load_data(task, data if data is not None else config["data"], progress=progress, config=config)
    train = training_subset(train, config)
    saved = checkpoint.get("extra", {}).get("preprocess")
    if saved is None:
        preprocess = build_preprocess(config["preprocess"], train.images, progress=progress)
    else:
        preprocess = new_preprocess(config["preprocess"], progress)
        preprocess.load_state_dict(saved)
    model = build_model(task, config, train)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return {"model": model, "preprocess": preprocess, "train": train, "test": test, "config": config}


def _export(task: Task, config: dict, log) -> dict:
    """--export: the model files of the run in --out (errors: one line on stderr, exit 2)."""
    try:
        written = export_run(task, config["out"], data=config["data"], progress=not config["quiet"], log=log)
    except (OSError, ValueError) as exc:
        fail(f"--export: {exc}")
    log("exported: " + ", ".join(written))
    return {"exported": written}


def _machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "cpu_count": os.cpu_count(),
            "platform": platform.platform()}
    if backends.get_backend() == "cupy":
        cupy = backends.array_module("cupy")
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        info.update(cupy=cupy.__version__, gpu=props["name"].decode() if isinstance(props["name"], bytes) else props["name"])
    return info
