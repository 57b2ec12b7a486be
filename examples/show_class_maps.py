"""What global average pooling sees: the class maps of a trained NIN, drawn over test images.

NIN has no fully connected classifier. Its last mlpconv layer makes one map per
class (10 maps of 8x8 for CIFAR-10), and global average pooling turns each map
into that class's score:

    logit[k] = mean over (i, j) of map_k[i, j]

So each map reads as a confidence map of its class: where in the image the
network sees evidence for "cat". The paper (Lin et al., 2014, figure 4) shows
that the map of the true class responds most, and on the object's region.
This script draws that picture from a run of examples/train_nin.py (any --dataset):

    python examples/show_class_maps.py --run runs/nin-cifar10 --out class_maps.png

One row per test image: the image, then its 10 class maps upsampled and laid
over it, each titled with its class and softmax probability. The true class
has a green frame; the prediction, if wrong, a red one. All maps of a row share
one colour scale (0 to the row's largest value), so they can be compared by eye.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))                     # minidl

import minidl  # noqa: E402
import minidl.data as mdata  # noqa: E402
import minidl.functional as F  # noqa: E402
from minidl.train.recipe import OptionParser, fail, restore_run  # noqa: E402
from minidl.train.tasks import TASKS  # noqa: E402
from minidl.train.report import pyplot, save_figure  # noqa: E402


def class_maps_and_probabilities(model, x):
    """x (N, C, H, W) -> (maps (N, K, H', W'), probabilities (N, K)) as NumPy arrays, in eval mode.

    The probabilities are softmax(GAP(maps)): exactly what model(x) feeds into the loss.
    """
    model.eval()
    with minidl.no_grad():
        maps = model.class_maps(x)
        probabilities = F.softmax(F.global_avg_pool2d(maps), axis=1)
    return minidl.backends.to_numpy(maps.data), minidl.backends.to_numpy(probabilities.data)


def plot_class_maps(images, maps, probabilities, labels, classes, path) -> None:
    """images uint8 (N, H, W, C); maps (N, K, h, w); probabilities (N, K); labels (N,) -> a PNG at path."""
    plt = pyplot()
    n, k = probabilities.shape
    fig, axes = plt.subplots(n, k + 1, figsize=(1.3 * (k + 1), 1.55 * n), squeeze=False)
    height, width = images.shape[1:3]
    for row in range(n):
        picture = images[row] if images.shape[3] == 3 else images[row, :, :, 0]
        gray = images[row].mean(axis=2)
        predicted = int(probabilities[row].argmax())
        ax = axes[row, 0]
        ax.imshow(picture, cmap=None if picture.ndim == 3 else "gray", interpolation="nearest")
        ax.set_title(classes[labels[row]], fontsize=8)
        if predicted != labels[row]:
            ax.set_xlabel(f"said {classes[predicted]}", fontsize=8, color="red", labelpad=2)
        top = max(float(maps[row].max()), 1e-12)          # one colour scale per row
        for c in range(k):
            ax = axes[row, c + 1]
            ax.imshow(gray, cmap="gray", alpha=0.5, extent=(0, width, height, 0))
            ax.imshow(maps[row, c], cmap="inferno", vmin=0, vmax=top, alpha=0.75,
                      interpolation="bilinear", extent=(0, width, height, 0))
            ax.set_title(f"{classes[c][:10]} {probabilities[row, c]:.2f}", fontsize=6.5)
            frame = "limegreen" if c == labels[row] else ("red" if c == predicted else None)
            for spine in ax.spines.values():
                spine.set_visible(frame is not None)
                if frame:
                    spine.set_edgecolor(frame)
                    spine.set_linewidth(2.5)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    save_figure(fig, path, dpi=110)


def main(argv=None) -> dict:
    p = OptionParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", default="runs/nin-cifar10", help="output folder of a training run (holds checkpoint.safetensors)")
    p.add_argument("--data", default=None, help="the data set, if not where the run found it (its config's --data)")
    p.add_argument("--task", choices=list(TASKS), default=None,
                   help="the run's data set (default: the --dataset its config records)")
    p.add_argument("--images", type=int, default=8, help="how many random test images to draw")
    p.add_argument("--seed", type=int, default=0, help="picks the test images")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default="auto")
    p.add_argument("--out", default=None, help="the picture (default: RUN/class_maps.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bars while the data set loads")
    args = p.parse_args(argv)
    if args.images < 1:
        p.error(f"--images must be at least 1, got {args.images}")
    if args.seed < 0:
        p.error(f"--seed must be at least 0, got {args.seed}")

    try:
        minidl.set_backend(args.backend)
        restored = restore_run(args.task, args.run, data=args.data, progress=not args.quiet)
    except (minidl.BackendError, mdata.DownloadError, OSError, ValueError, KeyError) as exc:
        fail(str(exc))
    model, preprocess, test = restored["model"], restored["preprocess"], restored["test"]
    picked = np.sort(np.random.default_rng(args.seed).choice(len(test), min(args.images, len(test)), replace=False))
    images, labels = test.images[picked], test.labels[picked]
    x = preprocess(mdata.to_float(minidl.backends.to_backend(images, minidl.get_backend())))
    maps, probabilities = class_maps_and_probabilities(model, minidl.tensor(x.transpose(0, 3, 1, 2)))
    out = args.out or os.path.join(args.run, "class_maps.png")
    plot_class_maps(images, maps, probabilities, labels, test.classes, out)

    predicted = probabilities.argmax(axis=1)
    print(f"{'image':>6}  {'true':<11} {'predicted':<11} {'p(true)':>7}  {'true map mean':>13}  {'largest other':>13}")
    for row, index in enumerate(picked):
        means = maps[row].mean(axis=(1, 2))                       # = the logits (GAP)
        other = np.delete(means, labels[row]).max()
        print(f"{index:>6}  {test.classes[labels[row]]:<11} {test.classes[predicted[row]]:<11} "
              f"{probabilities[row, labels[row]]:>7.2f}  {means[labels[row]]:>13.3f}  {other:>13.3f}")
    print(f"{int((predicted == labels).sum())} of {len(picked)} right; picture: {out}")
    return {"indices": picked, "maps": maps, "probabilities": probabilities, "out": out}


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
