"""ONNX export (chainrule.onnx): the written graphs pass onnx.checker, and ONNX Runtime's
outputs equal chainrule's eval-mode outputs (float32: 1e-5 relative) on inputs whose batch
size differs from the traced one; errors name the primitive and the layer, and leave no file.

Skipped, with the reason printed, where onnx or onnxruntime is not installed (they are the
optional extra chainrule[onnx], and in the dev extra CI installs).
"""
import importlib.util
import io
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import ExportError
from chainrule.nn import functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
RTOL, ATOL = 1e-5, 1e-6      # float32 agreement: relative, plus a small absolute floor


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'chainrule[onnx]')")
    return pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip "
                                                     "install 'chainrule[onnx]')")


def run_onnx(ort, data, feeds):
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def eval_outputs(model, *args):
    from chainrule.onnx.trace import flatten_outputs
    model.eval()
    with cr.no_grad():
        return [t.numpy() for t in flatten_outputs(model(*[cr.tensor(a) for a in args]))]


def max_rel_error(got, want):
    """The largest |got - want| / |want| over entries not within ATOL of 0."""
    scale = np.maximum(np.abs(want), ATOL / RTOL)
    return float(np.max(np.abs(got - want) / scale))


def check_agreement(ort, model, example, other, dynamic_axes, names=("x",), out_names=None):
    """Export with `example`, check the model, run `other` in ORT and compare."""
    import onnx
    from chainrule.onnx import export
    buf = io.BytesIO()
    proto = export(model, example, buf, input_names=list(names), output_names=out_names,
                   dynamic_axes=dynamic_axes)
    written = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(written, full_check=True)
    others = other if isinstance(other, tuple) else (other,)
    got = run_onnx(ort, buf.getvalue(), dict(zip(names, others)))
    want = eval_outputs(model, *others)
    assert len(got) == len(want)
    errors = []
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
        errors.append(max_rel_error(g, w))
    print(f"{type(model).__name__}: max relative error {max(errors):.2e} over "
          f"{sum(g.size for g in got)} outputs")
    return proto, written


# ---------------------------------------------------------------- the models

def _example(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EmbeddingLSTM(nn.Module):
    """Tokens -> Embedding(padding_idx=0) -> 2-layer LSTM (batch first) -> Linear on the last
    step; also returns the final hidden state."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 12, num_layers=2, batch_first=True)
        self.head = nn.Linear(12, 5)

    def forward(self, tokens):
        out, (h, c) = self.lstm(self.embed(tokens))
        return self.head(out[:, -1]), h


class LayerNormGELU(nn.Module):
    """A transformer-style MLP block: x + W2 GELU(W1 LayerNorm(x)), then softmax."""

    def __init__(self, d=16):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.up = nn.Linear(d, 4 * d)
        self.act = nn.GELU()
        self.down = nn.Linear(4 * d, d)

    def forward(self, x):
        y = x + self.down(self.act(self.up(self.norm(x))))
        return F.softmax(y, dim=-1)


def _trained_batchnorm(model, shape, steps=4):
    """Run a few training-mode batches so the running statistics are not 0 and 1."""
    model.train()
    for _ in range(steps):
        model(cr.randn(*shape) * 2.0 + 0.5)
    return model.eval()


def test_mlp(ort):
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(),
                          nn.Linear(16, 10), nn.LogSoftmax(dim=1))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    other = rng.standard_normal((13, 64)).astype(np.float32)
    proto, _ = check_agreement(ort, model, x, other, {"x": {0: "batch"}, "y": {0: "batch"}},
                               out_names=["y"])
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Gemm") == 3 and "ReduceMax" in ops      # log_softmax's shift, computed
    assert [i.name for i in proto.graph.initializer if "weight" in i.name] == \
        ["0.weight", "2.weight", "4.weight"]
    dim = proto.graph.input[0].type.tensor_type.shape.dim
    assert dim[0].dim_param == "batch" and dim[1].dim_value == 64


def test_digits_cnn(ort):
    cr.manual_seed(0)
    model = _example("cnn_digits").make_cnn()
    images = cr.data.load_digits(flatten=False)[0].numpy()[:40].astype(np.float32)
    proto, _ = check_agreement(ort, model, images[:16], images[16:39], {"x": [0]})
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 2 and ops.count("MaxPool") == 2 and "Gather" not in ops
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dynamic_axes_1"


def test_batchnorm_and_dropout(ort):
    cr.manual_seed(0)
    model = _trained_batchnorm(nn.Sequential(
        nn.Linear(10, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.5), nn.Linear(24, 3)),
        (32, 10))
    rng = np.random.default_rng(2)
    check_agreement(ort, model, rng.standard_normal((6, 10)).astype(np.float32),
                    rng.standard_normal((17, 10)).astype(np.float32), {"x": {0: "n"}})
    assert model.training is False and model[1].running_var.numpy().min() != 1.0


def test_batchnorm2d_conv(ort):
    cr.manual_seed(1)
    model = _trained_batchnorm(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 4)), (16, 3, 8, 8))
    rng = np.random.default_rng(3)
    check_agreement(ort, model, rng.standard_normal((2, 3, 8, 8)).astype(np.float32),
                    rng.standard_normal((5, 3, 8, 8)).astype(np.float32), {"x": {0: "n"}})


def test_embedding_lstm(ort):
    cr.manual_seed(0)
    model = EmbeddingLSTM()
    rng = np.random.default_rng(4)
    tokens = rng.integers(0, 30, (4, 9))
    other = rng.integers(0, 30, (11, 9))
    other[:3, :4] = 0                                   # padding tokens
    proto, _ = check_agreement(ort, model, tokens, other, {"tokens": {0: "batch"}},
                               names=("tokens",), out_names=["logits", "h"])
    outs = {o.name: o.type.tensor_type.shape for o in proto.graph.output}
    assert [d.dim_value for d in outs["h"].dim][::2] == [2, 12]
    assert outs["h"].dim[1].dim_param == "batch" and outs["logits"].dim[0].dim_param == "batch"
    assert proto.graph.input[0].type.tensor_type.elem_type == 7       # int64 tokens


def test_layernorm_gelu_block(ort):
    cr.manual_seed(0)
    model = LayerNormGELU()
    rng = np.random.default_rng(5)
    check_agreement(ort, model, rng.standard_normal((3, 7, 16)).astype(np.float32),
                    rng.standard_normal((6, 7, 16)).astype(np.float32) * 3,
                    {"x": {0: "batch"}})


class MaskedMean(nn.Module):
    """Two inputs sharing the batch axis: token ids (their padding mask is read from them
    outside the graph, a form export recognises) and per-token float weights."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, tokens, weights):
        real = (tokens != 0).astype(cr.float32)[..., None]
        pooled = (self.embed(tokens) * real * weights[..., None]).sum(1)
        return self.head(pooled / (weights.sum(1, keepdims=True) + 1.0))


def test_two_inputs_and_a_token_mask(ort):
    cr.manual_seed(0)
    rng = np.random.default_rng(8)
    tokens, other = rng.integers(0, 30, (3, 6)), rng.integers(0, 30, (7, 6))
    tokens[0, :2] = other[1:3, 3:] = 0
    weights = rng.random((3, 6)).astype(np.float32)
    check_agreement(ort, MaskedMean(), (tokens, weights),
                    (other, rng.random((7, 6)).astype(np.float32)),
                    {"tokens": {0: "batch"}, "weights": {0: "batch"}},
                    names=("tokens", "weights"))


class Everything(nn.Module):
    """The rest of the layers and functions: strided, padded and dilated pools and
    convolutions, leaky ReLU, softplus, SiLU, sigmoid, clip, pow, sqrt, abs, sin, cos,
    logsumexp, mean, var, max/min reductions, concat, stack, split, indexing, where, expand,
    cast, negation."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
        self.dilated = nn.Conv2d(6, 4, 3, padding=2, dilation=2)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.avg = nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
        self.act = nn.Softplus()

    def forward(self, x):
        y = self.pool(F.leaky_relu(self.conv(x), 0.1))
        y = self.avg(self.dilated(y))
        y = self.act(y) + F.silu(y) + y.clip(-0.5, 0.5) + (y.abs() + 1.0).sqrt() ** 1.5
        y = y + cr.sin(y) * cr.cos(y) - cr.maximum(y, 0.2) * cr.minimum(y, -0.1).sigmoid()
        flat = y.flatten(1)
        a, b = cr.split(flat, [flat.shape[1] // 2, flat.shape[1] - flat.shape[1] // 2], axis=1)
        both = cr.concatenate([b, a], axis=1)
        stats = cr.stack([flat.mean(1), flat.var(1), flat.amax(1), flat.amin(1)], axis=1)
        picked = cr.where(both > 0.5, both, both * 0.5)[:, ::3]
        wide = -cr.expand(stats[:, :1], (stats.shape[0], 3)).astype(cr.float64)
        return (F.softmax(both, dim=-1), cr.logsumexp(y, axis=(2, 3)), stats, picked,
                y[:, 1:3, None, -1].exp(), wide)


def test_the_other_layers_and_functions(ort):
    cr.manual_seed(0)
    rng = np.random.default_rng(6)
    model = Everything()
    proto, _ = check_agreement(ort, model, rng.standard_normal((2, 4, 9, 9)).astype(np.float32),
                               rng.standard_normal((5, 4, 9, 9)).astype(np.float32),
                               {"x": {0: "batch"}})
    assert "MaxPool" in [n.op_type for n in proto.graph.node]


def test_rnn_time_major_and_opsets(ort):
    """An RNN (time-major, batch on axis 1) at the lowest and highest opsets written."""
    from chainrule.onnx import MAX_OPSET, MIN_OPSET, export
    cr.manual_seed(0)
    model = nn.RNN(3, 5, num_layers=2)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 2, 3)).astype(np.float32)
    other = rng.standard_normal((6, 4, 3)).astype(np.float32)
    want = eval_outputs(model, other)
    for opset in (MIN_OPSET, MAX_OPSET):
        buf = io.BytesIO()
        proto = export(model, x, buf, input_names=["x"], dynamic_axes={"x": {1: "batch"}},
                       opset_version=opset)
        assert proto.opset_import[0].version == opset
        for g, w in zip(run_onnx(ort, buf.getvalue(), {"x": other}), want):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def test_nested_inputs_an_lstm_with_its_initial_state(ort):
    """args (x, (h0, c0)): the tensors inside the tuple are graph inputs too."""
    cr.manual_seed(0)
    model = nn.LSTM(3, 4)
    rng = np.random.default_rng(9)

    def inputs(n):
        return (rng.standard_normal((5, n, 3)).astype(np.float32),
                (rng.standard_normal((1, n, 4)).astype(np.float32),
                 rng.standard_normal((1, n, 4)).astype(np.float32)))
    x, (h0, c0) = inputs(2)
    other = inputs(3)
    from chainrule.onnx import export
    buf = io.BytesIO()
    export(model, (x, (h0, c0)), buf, input_names=["x", "h0", "c0"],
           dynamic_axes={"x": {1: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"}})
    got = run_onnx(ort, buf.getvalue(), {"x": other[0], "h0": other[1][0], "c0": other[1][1]})
    with cr.no_grad():
        out, (h, c) = model.eval()(cr.tensor(other[0]), tuple(map(cr.tensor, other[1])))
    for g, w in zip(got, [out, h, c]):
        np.testing.assert_allclose(g, w.numpy(), rtol=RTOL, atol=ATOL)


def test_without_dynamic_axes_the_shapes_are_fixed(ort):
    import onnx
    from chainrule.onnx import IR_VERSION, OPSET, export
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())
    x = cr.randn(2, 4)
    buf = io.BytesIO()
    export(model, x, buf)
    written = onnx.load_from_string(buf.getvalue())
    assert [d.dim_value for d in written.graph.input[0].type.tensor_type.shape.dim] == [2, 4]
    assert [d.dim_value for d in written.graph.output[0].type.tensor_type.shape.dim] == [2, 3]
    assert written.graph.input[0].name == "input_0" and written.graph.output[0].name == "output_0"
    assert written.opset_import[0].version == OPSET and written.ir_version == IR_VERSION[OPSET]
    props = {p.key: p.value for p in written.metadata_props}
    assert props["chainrule_version"] == cr.__version__ and written.producer_name == "chainrule"
    got = run_onnx(ort, buf.getvalue(), {"input_0": x.numpy()})[0]
    np.testing.assert_allclose(got, eval_outputs(model, x.numpy())[0], rtol=RTOL, atol=ATOL)


def test_export_leaves_the_model_as_it_was(ort, tmp_path):
    from chainrule.onnx import export
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    model.train()
    export(model, cr.randn(2, 4), tmp_path / "m.onnx")
    assert model.training and model[1].training
    assert model[0].weight.requires_grad is False and model[2].weight.requires_grad is True
    assert [p.name for p in model.parameters()][0] == "0.weight"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


# ---------------------------------------------------------------- chainrule train --export

def test_train_export_gives_the_same_test_accuracy(ort, tmp_path, capsys):
    from chainrule.cli import main
    from chainrule.train_cli import load_split
    path = tmp_path / "digits.onnx"
    assert main(["train", "--epochs", "1", "--hidden", "32", "--out", str(tmp_path / "run"),
                 "--no-progress", "--export", str(path)]) == 0
    text = capsys.readouterr().out
    accuracy = float(text.split("test accuracy: ")[1].split("%")[0])
    assert f"onnx:          {path}" in text
    _, _, test, mean, std = load_split("digits", 0)
    standardized, labels = np.asarray(test.arrays[0]), np.asarray(test.arrays[1])
    raw = (standardized * std + mean).astype(np.float32)    # the data set's own pixel values
    logits = run_onnx(ort, path.read_bytes(), {"input": raw})[0]
    assert logits.shape == (len(labels), 10)
    assert f"{100 * np.mean(logits.argmax(1) == labels):.2f}" == f"{accuracy:.2f}"


# ---------------------------------------------------------------- errors

class WithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.loss(self.fc(x), cr.tensor([0, 2]))


def test_an_unsupported_primitive_is_named_with_its_layer_and_nothing_is_written(ort, tmp_path):
    from chainrule.onnx import export
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"softmax_cross_entropy in WithLoss\.loss "
                                          r"\(CrossEntropyLoss\).*a loss"):
        export(WithLoss(), cr.randn(2, 4), path)
    assert os.listdir(tmp_path) == []
    path.write_bytes(b"the previous file")
    with pytest.raises(ExportError):
        export(WithLoss(), cr.randn(2, 4), path)
    assert path.read_bytes() == b"the previous file" and os.listdir(tmp_path) == ["model.onnx"]


def test_a_primitive_missing_from_the_table_is_named(ort, monkeypatch):
    from chainrule.onnx import export, table
    monkeypatch.delitem(table.EXPORTS, "relu")
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ExportError, match=r"relu in Sequential\.1 \(ReLU\): this primitive "
                                          r"has no ONNX export"):
        export(model, cr.randn(2, 4), io.BytesIO())


class ReadsValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) * cr.tensor(float(x.numpy().std()))   # outside the graph


def test_a_constant_read_from_the_input_is_refused(ort):
    from chainrule.onnx import export
    buf = io.BytesIO()
    with pytest.raises(ExportError, match=r"mul in ReadsValues: .*computed from the input "
                                          r"values outside the recorded graph"):
        export(ReadsValues(), cr.randn(3, 4), buf)
    assert buf.getvalue() == b""


def test_a_dynamic_sequence_axis_of_an_lstm_is_refused(ort):
    from chainrule.onnx import export
    model = nn.LSTM(3, 4, batch_first=True)
    with pytest.raises(ExportError, match=r"dynamic axis 'time'.*LSTM 3->4.*unrolls"):
        export(model, cr.randn(2, 5, 3), io.BytesIO(), input_names=["x"],
               dynamic_axes={"x": {0: "batch", 1: "time"}})


def test_bad_arguments(ort):
    from chainrule.onnx import export
    model = nn.Linear(4, 2)
    with pytest.raises(ExportError, match="opset_version 9"):
        export(model, cr.randn(2, 4), io.BytesIO(), opset_version=9)
    with pytest.raises(ExportError, match="'y', which is not an input or output name"):
        export(model, cr.randn(2, 4), io.BytesIO(), dynamic_axes={"y": [0]})
    with pytest.raises(ExportError, match="binary mode"):
        export(model, cr.randn(2, 4), io.StringIO())


# ---------------------------------------------------------------- no onnx needed

def test_the_table_covers_every_primitive():
    from chainrule.ops import REGISTRY
    from chainrule.onnx import EXPORTS, NOT_EXPORTED, ONNX_OPS
    assert not set(EXPORTS) & set(NOT_EXPORTED)
    assert set(EXPORTS) | set(NOT_EXPORTED) == set(REGISTRY), \
        "a primitive needs an ONNX translation in chainrule/onnx/table.py or a reason it has none"
    assert set(ONNX_OPS) == set(EXPORTS)


def test_the_docs_list_every_exported_primitive():
    from chainrule.onnx import EXPORTS, NOT_EXPORTED
    text = (ROOT / "docs" / "onnx.md").read_text(encoding="utf-8")
    missing = [name for name in list(EXPORTS) + list(NOT_EXPORTED) if f"`{name}`" not in text]
    assert not missing, f"docs/onnx.md does not list {missing}"


def test_import_chainrule_does_not_import_onnx():
    code = ("import sys, chainrule, chainrule.nn, chainrule.onnx\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('onnx', 'onnxruntime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_without_onnx_the_error_says_what_to_install(monkeypatch, tmp_path, capsys):
    from chainrule.onnx import export
    from chainrule.train_cli import main
    monkeypatch.setitem(sys.modules, "onnx", None)          # import onnx -> ImportError
    with pytest.raises(ImportError, match=r"chainrule\[onnx\]"):
        export(nn.Linear(2, 2), cr.randn(1, 2), tmp_path / "m.onnx")
    assert main(["--export", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "run")]) == 2
    assert "chainrule[onnx]" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []                       # refused before any training
