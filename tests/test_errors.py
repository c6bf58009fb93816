"""Every user mistake in the reliability issue's list raises a chainrule error that subclasses
the matching built-in and whose message names the op, the shapes/dtypes and a fix.

One test per case; `raises` checks the class, the built-in parent, and message fragments
(op name, shapes or dtypes, and a word of the suggested fix).
"""
import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import ChainruleError, DTypeError, GraphError, IndexError_, ShapeError


def raises(cls, builtin, fn, *fragments):
    """Run fn, demand a `cls` (a ChainruleError and a `builtin`), and every fragment in its
    message; return the message."""
    with pytest.raises(cls) as info:
        fn()
    err = info.value
    assert isinstance(err, ChainruleError) and isinstance(err, builtin)
    msg = str(err)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} missing from: {msg}"
    return msg


# ----- shapes -----
def test_shapes_that_do_not_broadcast():
    a, b = cr.ones(2, 3), cr.ones(4, 3)
    raises(ShapeError, ValueError, lambda: a + b, "add", "(2, 3)", "(4, 3)", "broadcast",
           "unsqueeze")


def test_matmul_inner_dimension_mismatch():
    a, b = cr.ones(2, 3), cr.ones(4, 5)
    raises(ShapeError, ValueError, lambda: a @ b, "matmul", "(2, 3)", "(4, 5)",
           "last dimension of a must equal", ".T")


def test_reshape_to_impossible_size():
    x = cr.ones(2, 3)
    raises(ShapeError, ValueError, lambda: x.reshape(4, 2), "reshape", "(2, 3)", "(4, 2)",
           "same number of elements", "-1")


def test_index_out_of_range():
    x = cr.ones(2, 3, requires_grad=True)
    raises(IndexError_, IndexError, lambda: x[5], "getitem", "(2, 3)", "index 5",
           "negative ones count from the end")
    raises(IndexError_, IndexError, lambda: x[:, [0, 7]], "getitem", "index 7")


def test_axis_out_of_range_raises_instead_of_wrapping():
    x = cr.ones(2, 3)
    raises(ShapeError, ValueError, lambda: x.sum(axis=2), "sum", "axis 2", "2 dimensions",
           "[-ndim, ndim)")
    # these used to wrap silently (axis % ndim) and give a wrong answer
    raises(ShapeError, ValueError, lambda: cr.cat([x, x], axis=3), "concatenate", "axis 3")
    raises(ShapeError, ValueError, lambda: x.transpose(0, 5), "swapaxes", "axis 5")
    raises(ShapeError, ValueError, lambda: x.squeeze(4), "squeeze", "axis 4")
    raises(DTypeError, TypeError, lambda: x.sum(axis="rows"), "sum", "str", "pass an int")


def test_empty_reductions():
    raises(ShapeError, ValueError, lambda: cr.zeros(0).mean(), "mean", "(0,)", "empty")
    raises(ShapeError, ValueError, lambda: cr.zeros(0, 2).max(), "max", "(0, 2)", "empty")
    raises(ShapeError, ValueError, lambda: cr.ones(1).var(), "var", "(1,)", "correction=0")


# ----- autograd misuse -----
def test_backward_on_non_scalar_without_gradient():
    x = cr.ones(2, 3, requires_grad=True)
    raises(GraphError, RuntimeError, lambda: (x * 2).backward(), "backward", "(2, 3)",
           "gradient=", ".sum().backward()")


def test_backward_gradient_of_wrong_shape():
    x = cr.ones(2, 3, requires_grad=True)
    raises(ShapeError, ValueError, lambda: (x * 2).backward(gradient=cr.ones(3)), "backward",
           "(3,)", "(2, 3)", "must match")


def test_backward_twice_through_a_freed_graph():
    x = cr.ones(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    raises(GraphError, RuntimeError, y.backward, "second time", "'sum'", "retain_graph=True")


def test_retain_graph_allows_a_second_backward():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_backward_on_tensor_that_does_not_require_grad():
    y = cr.ones(3).sum()
    raises(GraphError, RuntimeError, y.backward, "backward", "does not require grad",
           "requires_grad=True")


def test_backward_on_output_computed_under_no_grad():
    x = cr.ones(3, requires_grad=True)
    with cr.no_grad():
        y = (x * 2).sum()
    raises(GraphError, RuntimeError, y.backward, "no_grad()")


def test_in_place_change_of_a_saved_tensor():
    x = cr.ones(3, requires_grad=True)
    w = cr.tensor([1.0, 2.0, 3.0])
    y = (x * w).sum()
    w += 1  # the graph saved w for the gradient of x
    msg = raises(GraphError, RuntimeError, y.backward, "mul", "(3,)", "modified in place",
                 "version 0 -> 1", ".clone()")
    assert "out-of-place" in msg


def test_in_place_change_of_a_tensor_that_requires_grad():
    x = cr.ones(3, requires_grad=True)

    def bump():
        x.add_(1.0)
    raises(GraphError, RuntimeError, bump, "in-place", "(3,)", "requires grad", "no_grad()")


def test_autograd_grad_of_an_unused_input():
    x, z = cr.ones(2, requires_grad=True), cr.ones(2, requires_grad=True)
    raises(GraphError, RuntimeError, lambda: cr.autograd.grad((x * 2).sum(), [x, z]),
           "autograd.grad", "input 1", "allow_unused=True")


# ----- dtypes -----
@pytest.mark.parametrize("data,dtype", [([1, 2], "int64"), ([True, False], "bool")])
def test_integer_and_bool_tensors_cannot_require_grad(data, dtype):
    raises(DTypeError, TypeError, lambda: cr.tensor(data, requires_grad=True), "requires_grad",
           dtype, "dtype=cr.float32")
    raises(DTypeError, TypeError, lambda: cr.tensor(data).requires_grad_(), dtype)


def test_integer_creation_with_requires_grad():
    raises(DTypeError, TypeError, lambda: cr.zeros(2, dtype=cr.int64, requires_grad=True),
           "int64", "floating")


def test_float64_into_float32_in_place_update_is_refused():
    """Policy: an in-place update never silently rounds a wider array into narrower storage.
    Out of place, float32 + float64 promotes to float64 (no precision lost)."""
    w = cr.zeros(3)
    update = cr.tensor(np.full(3, 1e-9 + 1.0))
    raises(DTypeError, TypeError, lambda: w.add_(update), "add_", "float64", "float32",
           "(3,)", "astype(cr.float32)")
    assert w.tolist() == [0.0, 0.0, 0.0]          # untouched
    assert w._version == 0
    assert (w + update).dtype == np.float64      # out of place widens


def test_float_into_integer_in_place_update_is_refused():
    counts = cr.zeros(3, dtype=cr.int64)

    def bump():
        counts.__iadd__(cr.tensor([0.5, 0.5, 0.5]))
    raises(DTypeError, TypeError, bump, "add_", "float32", "int64", "astype")


def test_in_place_update_allows_scalars_and_same_dtype():
    w = cr.ones(3)
    w -= np.float64(0.25)          # a scalar is a value, not storage: allowed
    w *= cr.tensor([2.0, 2.0, 2.0])
    w += cr.tensor([1, 1, 1], dtype=cr.int32)  # integers into floats: exact enough, allowed
    assert w.dtype == np.float32 and w.tolist() == [2.5, 2.5, 2.5]
    assert w._version == 3


def test_in_place_update_with_wrong_shape():
    w = cr.zeros(3)
    raises(ShapeError, ValueError, lambda: w.add_(cr.ones(4)), "add_", "(3,)", "(4,)",
           "broadcast")


@pytest.mark.parametrize("bad,kind", [("abc", "str"), (None, "NoneType"), ({"a": 1}, "dict")])
def test_non_numeric_data_is_refused(bad, kind):
    raises(DTypeError, TypeError, lambda: cr.tensor(bad), "tensor", kind, "numbers only")
    raises(DTypeError, TypeError, lambda: cr.ones(2) * bad, "mul", kind)


def test_ragged_nested_list():
    raises(ShapeError, ValueError, lambda: cr.tensor([[1.0, 2.0], [3.0]]), "tensor", "ragged",
           "same length")


def test_bad_sizes_and_dtypes_in_creation():
    raises(ShapeError, ValueError, lambda: cr.randn(2, -1), "randn", "(2, -1)", ">= 0")
    raises(DTypeError, TypeError, lambda: cr.zeros("3"), "zeros", "str", "ints")
    raises(DTypeError, TypeError, lambda: cr.ones(2, dtype="float99"), "float99", "cr.float32")
    raises(DTypeError, TypeError, lambda: cr.ones(2).astype("nope"), "cast", "nope")


def test_item_of_many_values():
    raises(ShapeError, ValueError, lambda: cr.ones(2, 3).item(), "item()", "(2, 3)",
           "one-element")


# ----- neighbouring modules (nn, optim, io, train): their error cases from the list,
# checked here so the whole list is covered in one place -----
def _mlp():
    import chainrule.nn as nn
    return nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 10))


def test_linear_layer_fed_the_wrong_feature_count():
    import chainrule.nn as nn
    model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(64, 10))
    raises(ShapeError, ValueError, lambda: model(cr.ones(4, 32)), ".2", "Linear 64->10",
           "128 features", "(4, 128)", "fix the previous layer")


def test_conv_layer_fed_the_wrong_channel_count():
    import chainrule.nn as nn
    raises(ShapeError, ValueError, lambda: nn.Conv2d(3, 8, 3)(cr.ones(2, 1, 8, 8)), "Conv2d",
           "3->8", "1 channels", "(2, 1, 8, 8)", "expects 3")


@pytest.mark.parametrize("label", [10, -3])
def test_cross_entropy_label_out_of_range(label):
    import chainrule.nn.functional as F
    raises(IndexError_, IndexError,
           lambda: F.cross_entropy(cr.ones(4, 10), cr.tensor([0, 3, label, 1])),
           "cross_entropy", f"label {label}", "10 classes", "last layer")


def test_cross_entropy_float_labels():
    import chainrule.nn.functional as F
    raises(DTypeError, TypeError,
           lambda: F.cross_entropy(cr.ones(4, 10), cr.tensor([0.0, 3.0, 1.0, 1.0])),
           "cross_entropy", "float32", "(4,)", "astype(cr.int64)")


@pytest.mark.parametrize("fn", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_bce_target_outside_unit_interval(fn):
    import chainrule.nn.functional as F
    loss = getattr(F, fn)
    raises(ValueError, ValueError, lambda: loss(cr.full((3,), 0.5), cr.tensor([0.0, 1.5, 1.0])),
           fn, "[0, 1]", "1.5", "cross_entropy")


def test_bce_input_outside_unit_interval():
    import chainrule.nn.functional as F
    raises(ValueError, ValueError,
           lambda: F.binary_cross_entropy(cr.tensor([0.5, 1.25]), cr.tensor([0.0, 1.0])),
           "binary_cross_entropy", "1.25", "sigmoid", "with_logits")


def test_optimizer_given_no_parameters():
    raises(ValueError, ValueError, lambda: cr.optim.SGD([], lr=0.1), "SGD", "empty",
           "model.parameters()")


def test_optimizer_given_a_parameter_twice():
    p = cr.ones(3, requires_grad=True)
    raises(ValueError, ValueError, lambda: cr.optim.Adam([p, p], lr=0.1), "Adam", "(3,)",
           "once")


def test_load_state_dict_lists_every_problem_at_once():
    from chainrule.errors import CheckpointError
    model = _mlp()
    state = dict(model.state_dict())
    del state["0.weight"]
    state["extra.weight"] = cr.zeros(1)
    state["2.bias"] = cr.zeros(11)
    msg = raises(CheckpointError, ValueError, lambda: model.load_state_dict(state),
                 "load_state_dict", "missing keys: 0.weight", "unexpected keys: extra.weight",
                 "2.bias", "(11,)", "(10,)", "strict=False")
    assert msg.index("2.bias") >= 0 and "0.weight" in msg and "extra" in msg


def test_truncated_and_corrupted_checkpoints(tmp_path):
    from chainrule.errors import CheckpointError
    path = tmp_path / "m.safetensors"
    cr.save(_mlp().state_dict(), str(path))
    data = path.read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    raises(CheckpointError, ValueError, lambda: cr.load(str(tmp_path / "cut")), "load",
           "truncated", "earlier checkpoint")
    damaged = bytearray(data)
    damaged[-5] ^= 0xFF
    (tmp_path / "bad").write_bytes(bytes(damaged))
    raises(CheckpointError, ValueError, lambda: cr.load(str(tmp_path / "bad")), "corrupted",
           "earlier checkpoint")


def test_a_pickle_is_refused_without_running_it(tmp_path):
    from chainrule.errors import CheckpointError
    marker = tmp_path / "ran"
    payload = (b"\x80\x04cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    (tmp_path / "evil.safetensors").write_bytes(payload)
    raises(CheckpointError, ValueError, lambda: cr.load(str(tmp_path / "evil.safetensors")),
           "pickle", "never unpickles")
    assert not marker.exists()


def test_training_stops_on_a_non_finite_loss():
    """fit's on_nonfinite='raise' gives an AnomalyError naming where the NaN came from."""
    import chainrule.nn as nn
    from chainrule.data import DataLoader, TensorDataset
    from chainrule.errors import AnomalyError
    x = cr.ones(8, 2)
    y = cr.tensor([0, 1] * 4)
    model = nn.Sequential(nn.Linear(2, 2))
    with cr.no_grad():
        model[0].weight.fill_(float("nan"))
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(AnomalyError) as info:
        cr.train.fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False,
                     plot=False, on_nonfinite="raise")
    msg = str(info.value)
    assert "loss became nan" in msg and "0.weight" in msg and "lower learning rate" in msg
