#!/usr/bin/env python
"""Classify image files with a trained model: the top classes and their probabilities.

    python examples/predict.py --model runs/nin-cifar10/model.safetensors cat.png dog.jpg photos/
    python examples/predict.py --model runs/nin-cifar10/model.onnx cat.png          # through onnxruntime
    python examples/predict.py --model runs/nin-cifar10/model.safetensors cat.png --json
    python examples/predict.py --model runs/nin-cifar10/model.safetensors photos/ --show maps.png

A folder stands for the image files inside it (.png, .jpg, .jpeg, .bmp, .gif, .webp; not its
subfolders). Images of another size than the model's training images are resized with Pillow;
grayscale, palette and RGBA images are converted to the model's channels. ``model.safetensors`` is
written by every training run (``--export`` writes it, and ``model.onnx``, from a run's checkpoint).

``--show out.png`` draws each image beside the map of its top class: NIN's last layer makes one map per
class and the class score is that map's average (global average pooling), so the map shows where the
network saw the class. Both files hold the maps (model.onnx as its "class_maps" output).
Errors (a missing file, a file that is not an image, a file that is not a model) are one line on
stderr, exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidl  # noqa: E402
from minidl.models import load_images, load_model  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class MinidlPredictor:
    """A model.safetensors file: probabilities and class maps through minidl."""

    def __init__(self, path):
        self.model = load_model(path)
        self.classes, self.image_size = self.model.classes, self.model.image_size
        self.channels = self.model.config["in_channels"]

    def probabilities(self, images):
        return self.model.predict(images)

    def class_maps(self, images):
        """The last layer's maps (N, K, h, w) of uint8 images (N, H, W, C): what GAP averages into logits."""
        with minidl.no_grad():
            return self.model.class_maps(self.model.prepare(images)).numpy()


class OnnxPredictor:
    """A model.onnx file from minidl.onnx.export_classifier, run by onnxruntime."""

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError:
            raise ValueError("--model: running an .onnx file needs onnxruntime: pip install -e '.[onnx]'") from None
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no model file at {path}")
        try:
            self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as exc:          # onnxruntime raises its own exception types
            raise ValueError(f"{path} is not an ONNX model onnxruntime can load ({str(exc).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "minidl.classes" not in meta:
            raise ValueError(f"{path} is an ONNX model without minidl's class names; export it with "
                             "minidl.onnx.export_classifier (or the training script's --export)")
        self.classes = json.loads(meta["minidl.classes"])
        self.image_size = tuple(json.loads(meta["minidl.image_size"]))
        self.channels = int(self.session.get_inputs()[0].shape[3])

    def probabilities(self, images):
        return self.session.run(["probabilities"], {"images": images})[0]

    def class_maps(self, images):
        """The "class_maps" output (N, K, h, w) that export_classifier writes for a GAP head."""
        return self.session.run(["class_maps"], {"images": images})[0]

    def has_class_maps(self) -> bool:
        return any(output.name == "class_maps" for output in self.session.get_outputs())


def image_files(items) -> list:
    """The files named, with each folder replaced by its image files (sorted)."""
    files = []
    for item in items:
        if os.path.isdir(item):
            inside = sorted(os.path.join(item, name) for name in os.listdir(item)
                            if name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(item, name)))
            if not inside:
                raise FileNotFoundError(f"the folder {item} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            files += inside
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    return files


def top_k(probabilities, classes, k: int) -> list:
    """[(class name, probability)] of the k largest probabilities, largest first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]


def format_table(results) -> str:
    lines = []
    for result in results:
        lines.append(result["file"])
        for rank, (name, p) in enumerate(result["top"], 1):
            lines.append(f"  {rank}. {name:<16} {100 * p:6.2f}%")
    return "\n".join(lines)


def plot_top_maps(images, maps, results, path) -> None:
    """One row per image: the image, then its top class's map laid over it."""
    from minidl.train.report import pyplot, save_figure
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(n, 2, figsize=(4.2, 2.1 * n), squeeze=False)
    height, width = images.shape[1:3]
    for row in range(n):
        picture = images[row] if images.shape[3] == 3 else images[row, :, :, 0]
        name, p = results[row]["top"][0]
        axes[row, 0].imshow(picture, cmap=None if picture.ndim == 3 else "gray", interpolation="nearest")
        axes[row, 0].set_title(os.path.basename(results[row]["file"])[:24], fontsize=8)
        k = results[row]["top_index"]
        axes[row, 1].imshow(images[row].mean(axis=2), cmap="gray", alpha=0.5, extent=(0, width, height, 0))
        axes[row, 1].imshow(maps[row, k], cmap="inferno", vmin=0, vmax=max(float(maps[row, k].max()), 1e-12),
                            alpha=0.75, interpolation="bilinear", extent=(0, width, height, 0))
        axes[row, 1].set_title(f"{name} {100 * p:.1f}%", fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    save_figure(fig, path, dpi=110)


def main(argv=None) -> list:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="+", help="image files, or folders of them")
    p.add_argument("--model", required=True, help="model.safetensors (minidl) or model.onnx (onnxruntime)")
    p.add_argument("--top", type=int, default=5, help="how many classes to list per image")
    p.add_argument("--json", action="store_true", help="print JSON (a list: file, top classes) instead of a table")
    p.add_argument("--show", default=None, metavar="OUT.png", help="draw each image beside its top class's map")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default="numpy", help="minidl's backend")
    args = p.parse_args(argv)
    if args.top < 1:
        p.error(f"--top must be at least 1, got {args.top}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")

    def fail(message):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    try:
        minidl.set_backend(args.backend)
        onnx_file = args.model.lower().endswith(".onnx")
        predictor = OnnxPredictor(args.model) if onnx_file else MinidlPredictor(args.model)
        if onnx_file and args.show and not predictor.has_class_maps():
            fail(f"--show draws the class maps, and {args.model} has no 'class_maps' output (a model without "
                 "the GAP head, or a file exported before 2026-12-02); use its model.safetensors file")
        files = image_files(args.images)
        images = np.concatenate([load_images([f], predictor.image_size, predictor.channels) for f in files])
    except (FileNotFoundError, ValueError, minidl.BackendError) as exc:
        fail(str(exc).replace("load_model: ", "--model: ").replace("predict: ", ""))
    probabilities = np.concatenate([predictor.probabilities(images[start:start + args.batch_size])
                                    for start in range(0, len(images), args.batch_size)])
    k = min(args.top, len(predictor.classes))
    results = [{"file": f, "top": top_k(row, predictor.classes, k), "top_index": int(row.argmax())}
               for f, row in zip(files, probabilities)]
    if args.json:
        print(json.dumps([{"file": r["file"], "top": [{"class": c, "probability": q} for c, q in r["top"]]}
                          for r in results], indent=1))
    else:
        print(format_table(results))
    if args.show:
        maps = np.concatenate([predictor.class_maps(images[start:start + args.batch_size])
                               for start in range(0, len(images), args.batch_size)])
        plot_top_maps(images, maps, results, args.show)
        if not args.json:
            print(f"picture: {args.show}")
    return results


if __name__ == "__main__":
    main()
