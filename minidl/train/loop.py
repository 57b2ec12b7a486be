"""The training loop: epochs of minibatch SGD, evaluation, checkpoints, resume.

One training step is the four lines every framework shares::

    loss = F.softmax_cross_entropy(model(x), y)   # forward
    optimizer.zero_grad()
    loss.backward()                               # backward
    optimizer.step()                              # update

Around it, :func:`fit` keeps what a long run needs: a progress bar, an
evaluation on the test set after every epoch, an atomic checkpoint after
every epoch (and on Ctrl-C, mid-epoch), exact resume, and a clean stop when
the loss turns NaN.

Exact resume: everything random comes from minidl's seeded generators, whose
state goes into the checkpoint with the model, the optimizer, the schedule
and the position inside the epoch (the epoch's shuffled order and the number
of batches done). Restoring all of it replays the same computation.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time



from .. import backends
from .. import functional as F
from .. import random as mrandom
from ..engine.function import no_grad
from ..engine.tensor import Tensor
from ..progress import progress_bar as make_bar
from .checkpoint import CHECKPOINT_NAME, LEGACY_NAME, load_checkpoint, resumable_checkpoint, save_checkpoint
from .report import append_jsonl, plot_curves, read_jsonl, write_json


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class RunExistsError(FileExistsError):
    """``out_dir`` already holds a run, and neither resume nor overwrite was asked for."""


#: the files a run writes into its folder, besides the checkpoint (model.safetensors: the recipe's, at the end)
RUN_FILES = ("metrics.jsonl", "summary.json", "curves.png", "model.safetensors")


def checkpoint_path(out_dir) -> str:
    """Where the run in ``out_dir`` keeps its checkpoint."""
    return os.path.join(os.fspath(out_dir), CHECKPOINT_NAME)


def existing_run_files(out_dir) -> list:
    """The names of the files of a run already in ``out_dir`` (empty when there is none; an old checkpoint.pkl counts)."""
    names = [os.path.basename(checkpoint_path(out_dir)), LEGACY_NAME, *RUN_FILES]
    return [name for name in names if os.path.exists(os.path.join(os.fspath(out_dir), name))]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C arrived; the state was saved."""


class StopFlag:
    """Set by the first Ctrl-C (SIGINT) or SIGTERM; the loop stops at the next batch boundary.

    A step interrupted half-way (weights updated, schedule not yet) could not be resumed
    exactly, so the signal only raises a flag; a second Ctrl-C stops at once.
    """

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:      # not the main thread: signals stay as they are
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class _StopRequested(Exception):
    pass


def progress_bar(total, desc, enabled=True):
    """A tqdm bar counting images (disabled, but still usable, when ``enabled`` is False)."""
    return make_bar(total=total, desc=desc, unit="img", unit_scale=True, leave=False, dynamic_ncols=True,
                    enabled=enabled, mininterval=0.5)


def evaluate(model, loader, distributed=None) -> dict:
    """Mean loss and accuracy of ``model`` over ``loader`` (eval mode, no graph).

    ``distributed`` (a :class:`minidl.distributed.DataParallelTraining`): each rank evaluates its
    slice of the data set and the sums are reduced, so every image counts once.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with no_grad():
        for x, y in (loader if distributed is None else distributed.evaluation_batches(loader)):
            logits = model(Tensor(x))
            n = int(y.shape[0])
            loss_sum += float(F.softmax_cross_entropy(logits, y).item()) * n
            correct += int((logits.data.argmax(axis=1) == y).sum())
            count += n
    if distributed is not None:
        loss_sum, correct, count = distributed.sum_counts(loss_sum, correct, count)
    model.train(was_training)
    return {"loss": loss_sum / max(count, 1), "accuracy": correct / max(count, 1)}


class EpochState:
    """Where a run stands inside an epoch: its shuffled order and batches done."""

    def __init__(self, epoch, order, batches_done=0, loss_sum=0.0, correct=0, seen=0, seconds=0.0):
        self.epoch, self.order, self.batches_done = epoch, order, batches_done
        self.loss_sum, self.correct, self.seen, self.seconds = loss_sum, correct, seen, seconds

    def state_dict(self) -> dict:
        return dict(epoch=self.epoch, order=self.order, batches_done=self.batches_done,
                    loss_sum=self.loss_sum, correct=self.correct, seen=self.seen, seconds=self.seconds)


def train_epoch(model, optimizer, loader, state: EpochState, schedule=None, check_every: int = 20,
                show_progress: bool = True, stop: StopFlag | None = None, distributed=None) -> EpochState:
    """Run the remaining batches of ``state.epoch``; the loss is checked for NaN every ``check_every`` batches.

    ``schedule``: an LR schedule stepped after every batch (or None).
    ``distributed``: on several ranks, the :class:`minidl.distributed.DataParallelTraining` hooks
    (``model`` is then its DistributedDataParallel wrapper; the state counts the global batches).
    """
    model.train()
    batches = loader.batches(state.order)
    if distributed is not None:
        batches = distributed.trim_batches(batches)         # global batches, split into equal parts
    n_batches = len(batches)
    bar = progress_bar(sum(len(b) for b in batches), f"epoch {state.epoch}", show_progress)
    bar.update(sum(len(b) for b in batches[:state.batches_done]))
    device_loss = device_correct = 0      # summed on the device, read back every check_every batches
    pending = 0
    started = time.perf_counter() - state.seconds
    try:
        for b in range(state.batches_done, n_batches):
            x, y = loader.load(batches[b] if distributed is None else distributed.local_part(batches[b]))
            logits = model(Tensor(x))
            loss = F.softmax_cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            n = int(y.shape[0])
            device_loss = device_loss + loss.data * n
            device_correct = device_correct + (logits.data.argmax(axis=1) == y).sum()
            pending += n
            state.batches_done = b + 1
            stopping = stop is not None and stop.requested
            if distributed is not None:
                stopping = distributed.after_step(stopping)      # every rank stops after the same step
            if state.batches_done % check_every == 0 or state.batches_done == n_batches or stopping:
                batch_loss, batch_correct = float(device_loss), int(device_correct)
                if distributed is not None:
                    batch_loss, batch_correct, pending = distributed.sum_counts(batch_loss, batch_correct, pending)
                if not math.isfinite(batch_loss):
                    raise TrainingDiverged(
                        f"the training loss became {batch_loss} in epoch {state.epoch}, batch {state.batches_done}/{n_batches} "
                        "(a learning rate too high? With labels on the GPU, a label outside [0, classes) also gives NaN)"
                    )
                state.loss_sum += batch_loss
                state.correct += batch_correct
                state.seen += pending
                device_loss = device_correct = 0
                pending = 0
                state.seconds = time.perf_counter() - started
                bar.update(state.seen - bar.n)
                bar.set_postfix(loss=f"{state.loss_sum / state.seen:.3f}",
                                acc=f"{100 * state.correct / state.seen:.1f}%",
                                lr=f"{optimizer.param_groups[0]['lr']:.3g}",
                                refresh=False)
            if stopping:
                raise _StopRequested
    finally:
        bar.close()
    state.seconds = time.perf_counter() - started
    return state


def fit(model, optimizer, train_loader, test_loader, epochs: int, out_dir, config: dict,
        batch_schedule=None, epoch_schedule=None, plateau_schedule=None, resume: bool = False,
        overwrite: bool = False, extra_state: dict | None = None, show_progress: bool = True, log=print,
        distributed=None) -> dict:
    """Train for ``epochs`` epochs (in total, counting those of a resumed run); returns the summary.

    In ``out_dir``: checkpoint.safetensors (after every epoch and on Ctrl-C), metrics.jsonl (one line per epoch),
    summary.json and curves.png. ``extra_state`` (e.g. the fitted preprocessing) is stored in the checkpoint.
    A folder that already holds a run is continued with ``resume=True``, replaced with ``overwrite=True``,
    and otherwise refused (:class:`RunExistsError`): a finished run is never lost by accident.
    ``distributed``: a :class:`minidl.distributed.DataParallelTraining` to train on several ranks
    (``train_loader``'s batch size is then the global batch); only rank 0 logs and writes files.
    """
    writer = distributed is None or distributed.rank == 0
    if not writer:
        log, show_progress = (lambda *args, **kwargs: None), False
    if writer:
        os.makedirs(out_dir, exist_ok=True)
    ckpt_path = checkpoint_path(out_dir)
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    schedules = {"batch": batch_schedule, "epoch": epoch_schedule, "plateau": plateau_schedule}

    def snapshot(epoch_state):
        return {
            "config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedules": {k: s.state_dict() for k, s in schedules.items() if s is not None},
            "random": mrandom.get_state(), "epochs_done": epochs_done, "train_seconds": train_seconds,
            "epoch_state": None if epoch_state is None else epoch_state.state_dict(),
            "extra": extra_state or {},
            **({} if distributed is None else {"distributed": distributed.state_dict()}),    # collective
        }

    def save(epoch_state):
        state = snapshot(epoch_state)
        if writer:
            save_checkpoint(ckpt_path, state)

    epochs_done, train_seconds, epoch_state = 0, 0.0, None
    last_saved = None                    # where the checkpoint on disk stands, once this run has one
    found = resume and writer and resumable_checkpoint(out_dir) is not None   # an old .pkl: CheckpointError
    if distributed is not None:                 # rank 0's files decide, and rank 0 reads them
        found = distributed.broadcast_object(found if writer else None)
    if found:
        ckpt = load_checkpoint(ckpt_path) if writer else None
        if distributed is not None:
            ckpt = distributed.broadcast_object(ckpt)
        check_same_config(ckpt["config"], config)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        for k, s in schedules.items():
            if s is not None and k in ckpt["schedules"]:
                s.load_state_dict(ckpt["schedules"][k])
        mrandom.set_state(ckpt["random"])
        _check_same_world(ckpt, distributed)        # and each rank's own random state
        epochs_done, train_seconds = ckpt["epochs_done"], ckpt["train_seconds"]
        if ckpt["epoch_state"] is not None:
            epoch_state = EpochState(**ckpt["epoch_state"])
        # metrics.jsonl may hold lines written after this checkpoint (a crash between the two writes)
        history = [h for h in read_jsonl(metrics_path) if h["epoch"] <= epochs_done] if writer else []
        if writer:
            _rewrite_jsonl(metrics_path, history)
        last_saved = (f"epoch {epochs_done + 1}, batch {epoch_state.batches_done}" if epoch_state
                      else f"end of epoch {epochs_done}")
        if epochs_done >= epochs:
            log(f"the run in {out_dir} has already done its {epochs_done} epochs; nothing left to train")
        else:
            where = f"epoch {epochs_done + 1}" + (f", batch {epoch_state.batches_done + 1}" if epoch_state else "")
            log(f"resumed from {ckpt_path}: continuing at {where}")
    else:
        found = existing_run_files(out_dir) if writer else []
        if found and not (resume or overwrite):
            raise RunExistsError(f"fit: {out_dir} already holds a run ({', '.join(found)}); continue it with "
                                 "resume=True, write this one elsewhere, or replace it with overwrite=True")
        if resume:
            log(f"--resume: no checkpoint in {out_dir} yet, starting from scratch")
        for name in found:               # the replaced run's files go, so none of them mixes with this run's
            os.remove(os.path.join(out_dir, name))
        history = []

    with StopFlag() as stop:
        while epochs_done < epochs:
            epoch = epochs_done + 1
            if epoch_state is None:
                order = train_loader.shuffled_order()
                epoch_state = EpochState(epoch, order if distributed is None else distributed.broadcast_order(order))
            try:
                train_epoch(model if distributed is None else distributed.ddp, optimizer, train_loader, epoch_state,
                            schedules["batch"], show_progress=show_progress, stop=stop, distributed=distributed)
            except _StopRequested:
                save(epoch_state)
                last_saved = f"epoch {epoch}, batch {epoch_state.batches_done}"
                log(f"\ninterrupted: state saved to {ckpt_path} (epoch {epoch}, batch {epoch_state.batches_done}); "
                    "continue with --resume")
                raise Interrupted() from None
            except KeyboardInterrupt:
                log(f"\nstopped at once (second Ctrl-C): the last checkpoint in {ckpt_path} is kept")
                raise Interrupted() from None
            except TrainingDiverged as exc:
                kept = (f"The last good checkpoint ({ckpt_path}, {last_saved}) is kept" if last_saved is not None
                        else "No checkpoint was written: it diverged before the end of the first epoch")
                raise TrainingDiverged(f"{exc}. {kept}. Try a lower --lr, or --batch-norm.") from None
            if distributed is not None:
                distributed.before_evaluation(where=f"at the end of epoch {epoch}")
            test = evaluate(model, test_loader, distributed)
            train_seconds += epoch_state.seconds
            record = {
                "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                "train_loss": epoch_state.loss_sum / max(epoch_state.seen, 1),
                "train_accuracy": epoch_state.correct / max(epoch_state.seen, 1),
                "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                "epoch_seconds": epoch_state.seconds,
                "images_per_second": epoch_state.seen / max(epoch_state.seconds, 1e-9),
            }
            if schedules["epoch"] is not None:
                schedules["epoch"].step()
            if schedules["plateau"] is not None:
                schedules["plateau"].step(test["accuracy"])
            epochs_done, epoch_state = epoch, None
            save(None)
            last_saved = f"end of epoch {epoch}"
            if writer:
                append_jsonl(metrics_path, record)
            history.append(record)
            log(f"epoch {epoch:>3}/{epochs}  train loss {record['train_loss']:.4f} acc {100 * record['train_accuracy']:.2f}%  "
                f"test loss {record['test_loss']:.4f} acc {100 * record['test_accuracy']:.2f}%  "
                f"lr {record['lr']:.4g}  {record['images_per_second']:.0f} img/s  {record['epoch_seconds']:.1f} s")
            stopping = stop.requested if distributed is None else distributed.any(stop.requested)
            if stopping and epochs_done < epochs:
                log(f"interrupted: state saved to {ckpt_path} (end of epoch {epoch}); continue with --resume")
                raise Interrupted()

    if history and writer:
        plot_curves(history, os.path.join(out_dir, "curves.png"))
    last = history[-1] if history else {}
    images = sum(h["images_per_second"] * h["epoch_seconds"] for h in history)
    summary = {
        "test_accuracy": last.get("test_accuracy"),
        "best_test_accuracy": max((h["test_accuracy"] for h in history), default=None),
        "test_loss": last.get("test_loss"),
        "train_accuracy": last.get("train_accuracy"),
        "epochs": epochs_done,
        "train_seconds": train_seconds,
        "images_per_second": images / max(sum(h["epoch_seconds"] for h in history), 1e-9) if history else None,
        "backend": backends.get_backend(),
        "parameters": model.num_parameters(),
        "config": config,
        "world_size": 1 if distributed is None else distributed.world_size,
    }
    if writer:
        write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _check_same_world(ckpt: dict, distributed) -> None:
    """A run resumes on as many ranks as it was started with (minidl.distributed.training.check_same_world);
    on several, each rank takes back its own random state."""
    if distributed is not None:
        distributed.load_state_dict(ckpt.get("distributed"))
    elif ckpt.get("distributed") is not None:
        from ..distributed.training import check_same_world
        check_same_world(ckpt["distributed"], 1)


#: options added to the training recipe since its first checkpoints, with the value that meant the old behaviour
ADDED_OPTIONS = {"bias_lr_mult": 1.0, "bias_decay": True, "warmup": 0.15, "cycle_momentum": False, "nesterov": True,
                 "sync_bn": False, "grad_compression": None, "head": "gap",
                 # 2026-12-02: --dataset and its own options (the configs before did not say which data set;
                 # python -m minidl.convert_checkpoint, which every run of before then needs, writes it in
                 # from the first convolution's input channels: an MNIST run resumes as one)
                 "dataset": "cifar10", "labels": "fine", "extra": False}


def upgrade_config(saved: dict) -> dict:
    """A checkpoint's config in today's terms, so that an older run still resumes.

    ``init_std`` (None = He normal) became ``init`` on 2026-11-24; options added since then take the
    value that reproduces what the older code did (:data:`ADDED_OPTIONS`).
    """
    saved = dict(saved)
    if "init_std" in saved and "init" not in saved:
        std = saved.pop("init_std")
        saved["init"] = "he" if std is None else std
    if "init" in saved:                          # a recipe config (fit() is also used with others)
        for key, value in ADDED_OPTIONS.items():
            saved.setdefault(key, value)
    return saved


#: options that may differ between a run and its resumption: where and how it runs, not what it computes
RESUME_FREE_OPTIONS = {"resume", "overwrite", "out", "backend", "quiet", "eval_batch_size", "tf32", "export"}


def check_same_config(saved: dict, current: dict) -> None:
    """A resumed run must train the same model on the same data; epochs, output and backend may change.

    Raises ValueError with one line that names every option that differs.
    """
    free = set(RESUME_FREE_OPTIONS)
    saved = upgrade_config(saved)
    if current.get("schedule") in ("plateau", "constant"):
        free.add("epochs")          # these schedules do not depend on the run's length: it may grow
    changed = {k for k in set(saved) | set(current) if k not in free and saved.get(k) != current.get(k)}
    if changed == {"epochs"}:
        raise ValueError(f"--resume: the run was planned for {saved.get('epochs')} epochs, and --schedule "
                         f"{current.get('schedule')} spreads its learning rate over exactly that many, so it cannot "
                         f"become a run of {current['epochs']}; resume with --epochs {saved.get('epochs')}, or start "
                         f"a new run (another --out, or --overwrite); --schedule plateau and constant runs can grow")
    if changed:
        detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}" for k in sorted(changed))
        raise ValueError(f"--resume: the checkpoint was made with other settings ({detail}); "
                         "use the same options, or another --out folder")


def _rewrite_jsonl(path, records) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)
