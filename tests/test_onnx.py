"""minidl.onnx: the exported graphs pass onnx.checker and onnxruntime computes what minidl computes.

Tolerances: onnxruntime and minidl both compute in float32 and differ by rounding only. Both are
compared with minidl's forward pass in float64 (same weights): the longest sum in NIN has
192 * 25 = 4,800 products, whose float32 rounding error grows like sqrt(4800) * 2^-24 ~ 4e-6 of the sum
of |terms| per layer; over the 9 layers that stays under 1e-4 of the logits' scale (observed: ~1e-6).
So: rtol 1e-4 and atol 1e-4 x max |logit|.
"""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install -e '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install -e '.[onnx]')")

import minidl  # noqa: E402
import minidl.functional as F  # noqa: E402
import minidl.onnx as monnx  # noqa: E402
from minidl import data as mdata, nn  # noqa: E402
from minidl.models import MNIST_CHANNELS, NIN  # noqa: E402

from test_model_file import randomize_batch_norm  # noqa: E402


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def forward(model, x):
    model.eval()
    with minidl.no_grad():
        return model(minidl.tensor(x)).numpy()


def float64_copy(model, **kwargs):
    """The same model with every parameter and buffer in float64: the reference forward pass."""
    twin = NIN(**kwargs)
    twin.load_state_dict(model.state_dict())
    for p in twin.parameters():
        p.data = p.data.astype(np.float64)
    for module in twin.modules():
        for name, b in list(module._buffers.items()):
            module.set_buffer(name, b.astype(np.float64))
    return twin


def tolerance(reference):
    return dict(rtol=1e-4, atol=1e-4 * float(np.abs(reference).max()))


CASES = [
    pytest.param(dict(num_classes=10, in_channels=3), (3, 32, 32), 1.0, False, "max", id="cifar10-w1"),
    pytest.param(dict(num_classes=10, in_channels=3), (3, 32, 32), 1.0, True, "max", id="cifar10-w1-bn"),
    pytest.param(dict(num_classes=10, in_channels=3), (3, 32, 32), 0.25, False, "avg", id="cifar10-w025-avgpool"),
    pytest.param(dict(num_classes=10, in_channels=3), (3, 32, 32), 0.25, True, "max", id="cifar10-w025-bn"),
    pytest.param(dict(num_classes=10, in_channels=3, head="fc-dropout"), (3, 32, 32), 0.25, True, "max",
                 id="cifar10-w025-bn-fc-head"),
    pytest.param(dict(num_classes=10, in_channels=1, channels=MNIST_CHANNELS), (1, 28, 28), 1.0, False, "max",
                 id="mnist-w1"),
    pytest.param(dict(num_classes=10, in_channels=1, channels=MNIST_CHANNELS), (1, 28, 28), 1.0, True, "max",
                 id="mnist-w1-bn"),
    pytest.param(dict(num_classes=10, in_channels=1, channels=MNIST_CHANNELS), (1, 28, 28), 0.25, False, "max",
                 id="mnist-w025"),
    pytest.param(dict(num_classes=10, in_channels=1, channels=MNIST_CHANNELS), (1, 28, 28), 0.25, True, "max",
                 id="mnist-w025-bn"),
]


@pytest.mark.parametrize("kwargs, shape, width, batch_norm, pool2", CASES)
def test_exported_nin_matches_minidl_at_batch_1_and_17(tmp_path, kwargs, shape, width, batch_norm, pool2):
    kwargs = dict(kwargs, width=width, batch_norm=batch_norm, pool2=pool2)
    rng = np.random.default_rng(0)
    model = NIN(**kwargs)
    if batch_norm:
        randomize_batch_norm(model, rng)
    model.train()                                          # export must switch to eval itself (dropout, bn)
    x = rng.standard_normal((17, *shape)).astype(np.float32)
    proto = monnx.export(model, x[:2], tmp_path / "nin.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "nin.onnx")), full_check=True)
    ops = {node.op_type for node in proto.graph.node}
    assert "Dropout" not in ops and ({"BatchNormalization"} <= ops) == batch_norm
    assert ("AveragePool" in ops) == (pool2 == "avg") and {"Conv", "Relu", "MaxPool"} <= ops
    head = kwargs.get("head", "gap")
    assert ("GlobalAveragePool" in ops) == (head == "gap") and ({"Reshape", "Gemm"} <= ops) == (head != "gap")
    assert model.training, "export leaves the model in the mode it found it"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"

    reference = forward(float64_copy(model, **kwargs), x.astype(np.float64))
    ours = forward(model, x)
    np.testing.assert_allclose(ours, reference, **tolerance(reference))
    run = session(tmp_path / "nin.onnx")
    for batch in (x, x[:1]):                               # batch 17, then batch 1: the batch size is dynamic
        theirs = run.run(["logits"], {"input": batch})[0]
        assert theirs.shape == (len(batch), 10) and theirs.dtype == np.float32
        np.testing.assert_allclose(theirs, reference[:len(batch)], **tolerance(reference))


class Head(nn.Module):
    """Every other converter: Flatten (Reshape), Linear (Gemm), arithmetic, MatMul, Transpose, Softmax."""

    def __init__(self):
        super().__init__()
        self.flatten, self.fc = nn.Flatten(), nn.Linear(2 * 3 * 3, 4)

    def forward(self, x):
        h = self.fc(self.flatten(x))                       # (N, 4)
        h = (h * 0.5 + 1.0 - h / 3.0) @ minidl.tensor(np.eye(4)[::-1] * 2, dtype=h.dtype)
        h = -(h.transpose(1, 0).transpose(1, 0))
        return F.softmax(h, axis=1)


def test_the_other_converters_in_float64(tmp_path):
    model = Head()
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = np.random.default_rng(1).standard_normal((5, 2, 3, 3))
    monnx.export(model, x, tmp_path / "head.onnx")
    ops = [node.op_type for node in onnx.load(str(tmp_path / "head.onnx")).graph.node]
    assert {"Reshape", "Gemm", "Mul", "Add", "Sub", "Div", "MatMul", "Neg", "Transpose", "Softmax"} <= set(ops)
    expected = forward(model, x)
    for batch in (x, x[:1]):
        got = session(tmp_path / "head.onnx").run(None, {"input": batch})[0]
        np.testing.assert_allclose(got, expected[:len(batch)], rtol=1e-12, atol=1e-15)


def test_an_op_without_converter_is_named(tmp_path):
    class UsesExp(nn.Module):
        def forward(self, x):
            return F.relu(x).exp()
    with pytest.raises(NotImplementedError, match=r"the op minidl\.functional\.elementwise\.Exp has no ONNX converter"):
        monnx.export(UsesExp(), np.ones((1, 2), np.float32), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ValueError, match="opset must be in 13..21"):
        monnx.export(NIN(width=0.05), np.ones((1, 3, 32, 32), np.float32), tmp_path / "x.onnx", opset=9)


@pytest.mark.parametrize("kind", ["standard", "gcn-zca"])
@pytest.mark.parametrize("opset", [13, 17, 18])
def test_exported_classifier_takes_uint8_images_and_gives_predicts_probabilities(tmp_path, kind, opset):
    from minidl.models import load_model, save_model
    from test_model_file import CLASSES, small_trained_model
    model, preprocess, images = small_trained_model(kind)
    save_model(tmp_path / "m.safetensors", model, CLASSES, (8, 8), preprocess)
    loaded = load_model(tmp_path / "m.safetensors")
    monnx.export_classifier(loaded, tmp_path / "m.onnx", opset=opset)
    run = session(tmp_path / "m.onnx")
    meta = run.get_modelmeta().custom_metadata_map
    assert json.loads(meta["minidl.classes"]) == CLASSES and json.loads(meta["minidl.image_size"]) == [8, 8]
    logits, probabilities = run.run(["logits", "probabilities"], {"images": images})
    expected = loaded.predict(images)
    x = loaded.prepare(images)                              # preprocessing in float64 for the reference
    reference = forward(float64_copy(loaded, **loaded.config), x.data.astype(np.float64))
    np.testing.assert_allclose(logits, reference, **tolerance(reference))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    # the GAP head's maps come out as "class_maps", and their averages are the logits
    (maps,) = run.run(["class_maps"], {"images": images})
    twin = float64_copy(loaded, **loaded.config).eval()
    with minidl.no_grad():
        reference_maps = twin.class_maps(minidl.tensor(x.data.astype(np.float64))).numpy()
    assert maps.shape == reference_maps.shape and maps.shape[:2] == logits.shape
    np.testing.assert_allclose(maps, reference_maps, **tolerance(reference_maps))
    np.testing.assert_allclose(maps.mean(axis=(2, 3)), logits, **tolerance(logits))


def test_an_exported_classifier_without_the_gap_head_has_no_class_maps(tmp_path):
    from minidl.models import load_model, save_model
    from test_model_file import CLASSES, small_trained_model
    _, preprocess, images = small_trained_model("standard")
    model = NIN(num_classes=len(CLASSES), width=0.1, head="fc", image_size=8)
    save_model(tmp_path / "fc.safetensors", model, CLASSES, (8, 8), preprocess)
    monnx.export_classifier(load_model(tmp_path / "fc.safetensors"), tmp_path / "fc.onnx")
    assert [o.name for o in session(tmp_path / "fc.onnx").get_outputs()] == ["logits", "probabilities"]
