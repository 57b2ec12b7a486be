#!/usr/bin/env python
"""The paper's ablation: global average pooling against a fully connected classifier.

Trains NIN with each of its three heads (``--head gap``, ``fc``, ``fc-dropout``; see
minidl/models/nin.py) with one and the same training recipe, the one behind
examples/train_nin_cifar10.py, for each seed, then prints the test errors beside the paper's
(its table 2: FC 11.59%, FC + dropout 10.88%, GAP 10.41%, CIFAR-10 without augmentation).

Every option this script does not know goes to the recipe unchanged, so a reduced run on a CPU is

    OPENBLAS_NUM_THREADS=1 python examples/ablation_gap_vs_fc.py --seeds 0 1 --out runs/ablation -- \\
        --data ../shared/datasets/cifar10-jpeg.tar.gz --backend numpy --width 0.25 --subset 6000 \\
        --epochs 8 --batch-norm --no-augment --quiet

Each run writes into OUT/<head>-seed<seed>/ as the training script does and is resumed there
(``--resume``), so a stopped ablation continues where it stopped and a finished run is not
trained again. The table goes to the screen and to OUT/table.md; the figures to OUT/results.json.
``--table-only`` trains nothing: it makes the table of the runs in OUT that have finished (their
summary.json), for instance while the rest of an ablation is still running.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]                  # minidl, and the CIFAR-10 task of the training script

from minidl.models.nin import HEADS  # noqa: E402
from minidl.train.recipe import parse_config, run  # noqa: E402
from minidl.train.report import write_json  # noqa: E402
from train_nin_cifar10 import CIFAR10  # noqa: E402

#: test error (%) of each head in the paper (Lin, Chen and Yan 2013, table 2; CIFAR-10, no augmentation)
PAPER_TEST_ERROR = {"fc": 11.59, "fc-dropout": 10.88, "gap": 10.41}
#: the order of the table: the paper's, from worst to best
ORDER = ("fc", "fc-dropout", "gap")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], allow_abbrev=False,
        epilog="Options after these (or after --) go to the training recipe: see "
               "python examples/train_nin_cifar10.py --help. --head, --seed, --out and --resume are set here (--overwrite is refused).")
    p.add_argument("--heads", nargs="+", choices=ORDER, default=list(ORDER), help="the heads to train")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="one run per head and seed")
    p.add_argument("--out", default="runs/ablation-gap-vs-fc", help="folder of the runs and the table")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: the table of the runs in --out that have finished")
    args, recipe_argv = p.parse_known_args(argv)
    recipe_argv = [a for a in recipe_argv if a != "--"]
    for reserved in ("--head", "--seed", "--out", "--resume", "--overwrite"):
        if any(a == reserved or a.startswith(reserved + "=") for a in recipe_argv):
            p.error(f"{reserved} is set by the ablation for each run; leave it out of the recipe's options")
    if not args.table_only:
        parse_config(CIFAR10, recipe_argv)          # bad recipe options stop here, before any training
    return args, recipe_argv


def run_dir(out: str, head: str, seed: int) -> str:
    return os.path.join(out, f"{head}-seed{seed}")


def train_all(args, recipe_argv) -> dict:
    """{head: [summary of each seed]}, training (or resuming) each run in turn."""
    results = {}
    for head in args.heads:
        for seed in args.seeds:
            print(f"\n== head {head}, seed {seed} ==", flush=True)
            argv = recipe_argv + ["--head", head, "--seed", str(seed), "--out", run_dir(args.out, head, seed),
                                  "--resume"]
            results.setdefault(head, []).append(run(CIFAR10, argv))
    return results


def finished_runs(args) -> dict:
    """{head: [summary of each seed whose run finished]}, read from OUT/<head>-seed<seed>/summary.json."""
    results = {}
    for head in args.heads:
        for seed in args.seeds:
            path = os.path.join(run_dir(args.out, head, seed), "summary.json")
            if os.path.exists(path):
                with open(path) as f:
                    results.setdefault(head, []).append(json.load(f))
    if not results:
        print(f"ablation: no finished run in {args.out} (no <head>-seed<seed>/summary.json)", file=sys.stderr)
        sys.exit(2)
    return results


def table(results: dict) -> str:
    """A Markdown table: parameters, train and test error per seed, their mean, the paper's test error."""
    seeds = sorted({r["config"]["seed"] for runs in results.values() for r in runs})
    head_row = ["head", "parameters", "train error", *[f"test error, seed {s}" for s in seeds],
                "mean test error", "paper's test error"]
    lines = ["| " + " | ".join(head_row) + " |", "|" + "---|" * len(head_row)]
    for head in ORDER:
        if head not in results:
            continue
        runs = results[head]
        test = {r["config"]["seed"]: 100 * (1 - r["test_accuracy"]) for r in runs}
        train = statistics.mean(100 * (1 - r["train_accuracy"]) for r in runs)
        errors = list(test.values())
        mean = f"{statistics.mean(errors):.2f}%" + (f" ± {statistics.stdev(errors):.2f}" if len(errors) > 1 else "")
        cells = [f"`{head}`", f"{runs[0]['parameters']:,}", f"{train:.2f}%",
                 *[f"{test[s]:.2f}%" if s in test else "" for s in seeds], mean, f"{PAPER_TEST_ERROR[head]:.2f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args, recipe_argv = parse_args(argv)
    results = finished_runs(args) if args.table_only else train_all(args, recipe_argv)
    text = table(results)
    print("\n" + text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "table.md.tmp"), "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(os.path.join(args.out, "table.md.tmp"), os.path.join(args.out, "table.md"))
    write_json(os.path.join(args.out, "results.json"),
               {"recipe_options": recipe_argv, "seeds": args.seeds, "paper_test_error": PAPER_TEST_ERROR,
                "config": next(iter(results.values()))[0]["config"],
                "seeds_run": {h: [r["config"]["seed"] for r in rs] for h, rs in results.items()},
                "runs": {h: [{k: r[k] for k in ("test_accuracy", "best_test_accuracy", "train_accuracy",
                                                 "parameters", "train_seconds", "images_per_second")}
                             for r in rs] for h, rs in results.items()}})


if __name__ == "__main__":
    main()
