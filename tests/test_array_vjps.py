"""The engine's array twins of the VJP rules (`array_vjps=` in each registry entry) give the
same gradients as the Tensor rules they shadow, on every primitive sample and composite of
primitive_specs."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import autograd
from chainrule.ops import REGISTRY

from primitive_specs import all_composites, all_samples, sample_id

TWINNED = sorted(name for name, prim in REGISTRY.items() if prim.fast is not None)
ITEMS = [item for item in all_samples() + all_composites()]


def _grads(sample, dtype, create_graph):
    xs = [cr.tensor(a, dtype=dtype, requires_grad=True) for a in sample.args]
    out = sample.fn(*xs)
    rng = np.random.default_rng(7)
    v = cr.tensor(rng.standard_normal(out.shape), dtype=out.dtype)
    grads = cr.autograd.grad(out, xs, grad_outputs=v, create_graph=create_graph,
                             allow_unused=True)
    return [None if g is None else g.numpy() for g in grads]


def test_the_training_primitives_have_array_twins():
    assert {"linear", "softmax_cross_entropy", "relu", "matmul", "add", "mul", "sum",
            "max_pool2d", "im2col", "col2im"} <= set(TWINNED)


@pytest.mark.parametrize("dtype", [cr.float64, cr.float32])
@pytest.mark.parametrize("item", ITEMS, ids=[sample_id(i) for i in ITEMS])
def test_array_twins_equal_the_tensor_rules(item, dtype):
    _, sample = item
    fast = _grads(sample, dtype, create_graph=False)      # array twins where present
    slow = _grads(sample, dtype, create_graph=True)       # always the Tensor rules
    for f, s in zip(fast, slow):
        assert (f is None) == (s is None)
        if f is not None:
            assert f.dtype == s.dtype and f.shape == s.shape
            np.testing.assert_allclose(f, s, rtol=1e-6 if dtype == cr.float32 else 1e-13,
                                       atol=1e-7 if dtype == cr.float32 else 1e-14)


def test_a_training_step_never_builds_tensor_vjps(monkeypatch):
    from chainrule import nn
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = cr.randn(4, 6), cr.tensor([0, 2, 1, 1])

    def refuse(*args, **kwargs):
        raise AssertionError("a Tensor VJP ran in a first-order backward")
    monkeypatch.setattr(autograd.Node, "vjp", refuse)
    nn.functional.cross_entropy(model(x), y).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_patched_tensor_rules_take_over_and_the_twins_come_back(monkeypatch):
    relu = REGISTRY["relu"]
    twins = relu.fast
    monkeypatch.setattr(relu, "vjps", (lambda g, y, x: g * 3.0,))
    assert relu.fast is None
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    cr.relu(x).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]            # the patched rule, not the twin
    monkeypatch.undo()
    assert relu.fast is twins


def test_cross_entropy_gradient_from_the_saved_softmax_equals_a_recomputed_one():
    from chainrule.ops import fused
    rng = np.random.default_rng(3)
    x = cr.tensor(rng.standard_normal((5, 4)), dtype=cr.float32, requires_grad=True)
    labels = np.array([0, 3, 1, 1, 2])
    loss = fused.softmax_cross_entropy(x, labels)
    saved = loss._node.params["saved"]
    assert saved["x"] is x.data and saved["labels"] is loss._node.params["labels"]
    fresh = fused._sce_grad_forward(x.data, loss._node.params["labels"], "mean")   # recomputed
    other = fused.softmax_cross_entropy(x * 2.0, labels)          # another loss, its own slot
    loss.backward()
    assert saved == {}                   # taken by the backward: the node keeps no softmax
    np.testing.assert_array_equal(x.grad.numpy(), fresh)
    assert other._node.params["saved"]["x"] is other._node.inputs[0].data


def test_a_forward_rerun_with_the_same_params_never_hands_its_softmax_to_the_first_node():
    """explain's rounding replay and verification re-run a recorded forward with the node's
    own params (the same `saved` dict) on other arrays: the first node's backward must then
    recompute, not take the replay's softmax."""
    from chainrule.ops import fused
    rng = np.random.default_rng(4)
    x = cr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    labels = np.array([2, 0, 1])
    loss = fused.softmax_cross_entropy(x, labels, reduction="sum")
    params = loss._node.params
    want = fused._sce_grad_forward(x.data, labels, "sum")
    fused.SOFTMAX_XENT.forward(x.data + 5.0 * rng.standard_normal((3, 4)), **params)
    assert params["saved"]["x"] is not x.data
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), want)
    replayed = cr.ops.apply(fused.SOFTMAX_XENT, (x,), **params)   # same dict, same logits
    x.grad = None
    replayed.backward()
    assert params["saved"] == {}                         # this time the saved softmax served
    np.testing.assert_array_equal(x.grad.numpy(), want)


@pytest.mark.parametrize("shape,k", [((2, 3, 8, 8), 2), ((2, 2, 9, 7), 2), ((1, 2, 9, 9), 3)])
@pytest.mark.parametrize("values", ["distinct", "ties", "nan"])
def test_max_pool_gradient_twin_equals_the_index_path(shape, k, values):
    from chainrule.ops import fused
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    if values == "ties":
        x = np.round(x)                     # many windows with two or more equal maxima
    elif values == "nan":
        x[0, 0, 0, 0] = np.nan
    y = fused._pool_forward(x, k)
    g = rng.standard_normal(y.shape).astype(np.float32)
    want = fused._scatter_forward(g, fused._pool_index(x, k), x.shape)
    np.testing.assert_array_equal(fused._pool_grad_array(g, y, x, k), want)


@pytest.mark.parametrize("labels,ignore_index", [([0, 3, -1], -100), ([0, 4, 1], -100),
                                                 ([0, 2, 1], 2), ([1, 2, 1], 3)])
def test_cross_entropy_label_check_routes_like_the_full_check(labels, ignore_index):
    """The quick min/max test picks the fused path exactly when every label is valid and
    none is ignored; otherwise the general path answers (or raises) as before."""
    from chainrule.errors import IndexError_
    from chainrule.nn import functional as F
    x = cr.tensor(np.random.default_rng(2).standard_normal((3, 4)))
    t = np.array(labels)
    valid = (t != ignore_index) & (t >= 0) & (t < 4)
    bad = ((t != ignore_index) & ((t < 0) | (t >= 4))).any()
    assert F._labels_all_valid(t, 4, ignore_index) == (bool(valid.all()) and not bad)
    if bad:
        with pytest.raises(IndexError_, match="out of range"):
            F.cross_entropy(x, cr.tensor(t), ignore_index=ignore_index)
    else:
        got = F.cross_entropy(x, cr.tensor(t), ignore_index=ignore_index).item()
        logp = np.log(np.exp(x.numpy()) / np.exp(x.numpy()).sum(1, keepdims=True))
        want = -np.mean([logp[i, k] for i, k in enumerate(labels) if k != ignore_index])
        assert abs(got - want) < 1e-9


def _first_and_graph_grads(f, xs, capture=None):
    capture = xs if capture is None else capture
    fast = [g.numpy().copy() for g in cr.autograd.grad(f(), capture, retain_graph=True)]
    slow = [g.numpy() for g in cr.autograd.grad(f(), capture, create_graph=True)]
    return fast, slow


def test_slices_add_into_one_buffer_like_the_scatter_rule():
    """split's pieces, overlapping slices, an int index and a reused piece: the engine's
    one-buffer accumulation gives what the Tensor rules (scatter + sum) give."""
    rng = np.random.default_rng(11)
    x = cr.tensor(rng.standard_normal((4, 9)), requires_grad=True)
    h = x * 2.0                                    # a non-leaf input too

    def f():
        pieces = cr.split(h, [2, 3, 4], axis=1)
        extra = (x[1:3] * x[0:2]).sum() + x[2].sum() * 3.0 + (pieces[0] * pieces[0]).sum()
        return sum((p * float(k + 1)).sum() for k, p in enumerate(pieces)) + extra
    fast, slow = _first_and_graph_grads(f, [x])
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-13, atol=1e-13)


def test_captured_gradients_are_not_changed_by_later_accumulation():
    x = cr.tensor(np.arange(6.0), requires_grad=True)
    y = x * 1.0
    z = y * 1.0
    loss = z[0:3].sum() + z[2:6].sum() + (y * 2.0).sum()
    gz, gy, gx = cr.autograd.grad(loss, [z, y, x])
    assert gz.tolist() == [1.0, 1.0, 2.0, 1.0, 1.0, 1.0]
    assert gy.tolist() == [3.0, 3.0, 4.0, 3.0, 3.0, 3.0]
    assert gx.tolist() == gy.tolist()


def test_leaf_grads_from_slices_accumulate_across_backward_calls():
    x = cr.tensor(np.ones(4), requires_grad=True)
    for _ in range(2):
        a, b = cr.split(x, 2)
        (a.sum() * 2.0 + b.sum() * 3.0).backward()
    assert x.grad.tolist() == [4.0, 4.0, 6.0, 6.0]


def test_an_entry_needs_one_array_twin_per_input():
    from chainrule.ops.registry import Primitive
    rule = lambda g, y, a, b: g                                     # noqa: E731
    with pytest.raises(ValueError, match="one rule per input"):
        Primitive("twin_count_check", np.add, [rule, rule], "a + b", ["1", "1"],
                  array_vjps=[rule])
    assert "twin_count_check" not in REGISTRY
