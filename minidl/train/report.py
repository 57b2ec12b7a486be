"""What a run leaves in its output folder: metrics.jsonl, summary.json, curves.png."""
from __future__ import annotations

import json
import os


def append_jsonl(path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path) -> list:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json(path, record: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def pyplot():
    """matplotlib.pyplot drawing to files only (the Agg backend: no window, works without a screen)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi: int = 100) -> None:
    """Write a figure as PNG atomically (temporary file, then rename) and close it."""
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    os.replace(tmp, path)


def draw_curves(history: list):
    """The figure of :func:`plot_curves`: loss and accuracy per epoch, train and test, side by side.

    Every epoch is drawn as a marker as well as a line (up to 50 epochs), so a run of one or two
    epochs still shows its points instead of empty axes; the epoch axis has whole-number ticks.
    """
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    marker = "o" if len(history) <= 50 else None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, scale, label in ((ax_loss, "loss", 1, "cross-entropy loss"), (ax_acc, "accuracy", 100, "accuracy (%)")):
        for split in ("train", "test"):
            ax.plot(epochs, [scale * h[f"{split}_{key}"] for h in history], marker=marker, markersize=4, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_curves(history: list, path) -> None:
    """Loss and accuracy per epoch, train and test, side by side, as a PNG at ``path``."""
    save_figure(draw_curves(history), path)
