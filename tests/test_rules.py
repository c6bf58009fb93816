"""One rule, two speeds: each primitive's VJP rule runs on plain arrays for a first-order
backward and on Tensors under create_graph, and both give the same gradients on every
primitive sample and composite of primitive_specs; the first-order kernels equal the rules
they stand in for."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import REGISTRY

from primitive_specs import all_composites, all_samples, nodes_of, sample_id

ITEMS = [item for item in all_samples() + all_composites()]


def _grads(sample, dtype, create_graph):
    xs = [cr.tensor(a, dtype=dtype, requires_grad=True) for a in sample.args]
    out = sample.fn(*xs)
    rng = np.random.default_rng(7)
    v = cr.tensor(rng.standard_normal(out.shape), dtype=out.dtype)
    grads = cr.autograd.grad(out, xs, grad_outputs=v, create_graph=create_graph,
                             allow_unused=True)
    return [None if g is None else g.numpy() for g in grads]


TOLERANCES = {cr.float64: (1e-13, 1e-14), cr.float32: (1e-6, 1e-7), cr.float16: (2e-3, 1e-3)}


@pytest.mark.parametrize("dtype", [cr.float64, cr.float32, cr.float16])
@pytest.mark.parametrize("item", ITEMS, ids=[sample_id(i) for i in ITEMS])
def test_rules_on_arrays_equal_the_rules_on_tensors(item, dtype):
    _, sample = item
    fast = _grads(sample, dtype, create_graph=False)      # rules (and kernels) on arrays
    slow = _grads(sample, dtype, create_graph=True)       # the same rules on Tensors
    rtol, atol = TOLERANCES[dtype]
    for f, s in zip(fast, slow):
        assert (f is None) == (s is None)
        if f is not None:
            assert f.dtype == s.dtype == dtype and f.shape == s.shape
            np.testing.assert_allclose(f, s, rtol=rtol, atol=atol)


def test_a_first_order_backward_makes_no_tensor_inside_a_rule(monkeypatch):
    """First-order gradients stay arrays end to end: no primitive records or wraps anything
    while a training step's backward runs its rules."""
    from chainrule import nn
    from chainrule.ops import registry
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = cr.randn(4, 6), cr.tensor([0, 2, 1, 1])
    loss = nn.functional.cross_entropy(model(x), y)

    def refuse(*args, **kwargs):
        raise AssertionError("a Tensor op ran in a first-order backward")
    monkeypatch.setattr(registry, "apply", refuse)
    seen = []
    with cr.autograd.observe(lambda node, g, grads: seen.extend(
            type(v) for v in [g, *grads] if v is not None)):
        loss.backward()
    assert seen and set(seen) == {np.ndarray}
    assert all(isinstance(p.grad, cr.Tensor) for p in model.parameters())


def test_a_patched_rule_is_what_the_engine_runs(monkeypatch):
    relu = REGISTRY["relu"]
    monkeypatch.setattr(relu, "vjps", (lambda g, y, x: g * 3.0,))
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    cr.relu(x).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("name", sorted(n for n, p in REGISTRY.items()
                                        if p.first_order_kernel is not None))
def test_kernels_are_declared_only_where_measured(name):
    """first_order_kernel is the exception (bench/NOTES.md): max-pool's comparison with the
    window maxima; linear's rules without per-call dispatch. A new one needs its own test
    against its rule below."""
    assert name in {"max_pool2d", "linear"}


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_first_order_kernels_equal_its_rules(x_shape, bias):
    from chainrule.ops import fused
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) if bias else None
    args = (x, w) + ((b,) if bias else ())
    y = fused.LINEAR.forward(*args)
    g = rng.standard_normal(y.shape).astype(np.float32)
    for i, (kernel, rule) in enumerate(zip(fused.LINEAR.first_order_kernel, fused.LINEAR.vjps)):
        if i < len(args):
            np.testing.assert_array_equal(kernel(g, y, *args), rule(g, y, *args))


def test_cross_entropy_gradient_from_the_saved_softmax_equals_a_recomputed_one():
    from chainrule.ops import fused
    rng = np.random.default_rng(3)
    x = cr.tensor(rng.standard_normal((5, 4)), dtype=cr.float32, requires_grad=True)
    labels = np.array([0, 3, 1, 1, 2])
    loss = fused.softmax_cross_entropy(x, labels)
    saved = loss._node.params["saved"]
    assert saved["x"] is x._data and saved["labels"] is loss._node.params["labels"]
    fresh = fused._sce_grad_forward(x._data, loss._node.params["labels"], "mean")   # recomputed
    other = fused.softmax_cross_entropy(x * 2.0, labels)          # another loss, its own slot
    loss.backward()
    assert saved == {}                   # taken by the backward: the node keeps no softmax
    np.testing.assert_array_equal(x.grad.numpy(), fresh)
    assert other._node.params["saved"]["x"] is other._node.inputs[0]._data


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
    want = fused._sce_grad_forward(x._data, labels, "sum")
    fused.SOFTMAX_XENT.forward(x._data + 5.0 * rng.standard_normal((3, 4)), **params)
    assert params["saved"]["x"] is not x._data
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), want)
    replayed = cr.ops.apply(fused.SOFTMAX_XENT, (x,), **params)   # same dict, same logits
    x.grad = None
    replayed.backward()
    assert params["saved"] == {}                         # this time the saved softmax served
    np.testing.assert_array_equal(x.grad.numpy(), want)


@pytest.mark.parametrize("shape,k", [((2, 3, 8, 8), 2), ((2, 2, 9, 7), 2), ((1, 2, 9, 9), 3)])
@pytest.mark.parametrize("values", ["distinct", "ties", "nan"])
def test_max_pool_first_order_kernel_equals_its_rule(shape, k, values):
    from chainrule.ops import fused
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    if values == "ties":
        x = np.round(x)                     # many windows with two or more equal maxima
    elif values == "nan":
        x[0, 0, 0, 0] = np.nan
    y = fused._pool_forward(x, k)
    g = rng.standard_normal(y.shape).astype(np.float32)
    want = fused._pool_rule(g, y, x, k)                 # the rule, on arrays
    np.testing.assert_array_equal(fused._pool_first_order_kernel(g, y, x, k), want)


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


def test_an_entry_needs_names_and_derivatives_per_input():
    from chainrule.ops.registry import Primitive
    rule = lambda g, y, a, b: g                                     # noqa: E731
    with pytest.raises(ValueError, match="2 input names"):
        Primitive("count_check", np.add, [rule, rule], inputs=("a",), formula="a + b",
                  derivs=["1", "1"])
    with pytest.raises(ValueError, match="first_order_kernel"):
        Primitive("count_check", np.add, [rule, rule], formula="a + b", derivs=["1", "1"],
                  first_order_kernel=[rule])
    assert "count_check" not in REGISTRY


def to_host(a):
    return cr.backend.to_host(a) if cr.backend.is_array(a) else a


class _ShapeOnly:
    """What a rule may read of a value its entry does not save: shape metadata only."""

    def __init__(self, array):
        self.shape, self.ndim, self.dtype, self.size = (array.shape, array.ndim, array.dtype,
                                                        array.size)

    def __getattr__(self, name):
        raise AssertionError(f"the rule read .{name} of a value its entry does not save")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the rule read the values of a value its entry does not save")


@pytest.mark.parametrize("item", all_samples(), ids=[sample_id(i) for i in all_samples()])
def test_rules_read_only_what_their_entry_saves(item):
    """An entry's `saves` is a promise (the engine and a static-graph capture may free the
    rest): run each rule on arrays with every unsaved value replaced by its shape alone."""
    name, sample = item
    prim = REGISTRY[name]
    xs = [cr.tensor(a, requires_grad=True) for a in sample.args]
    nodes = nodes_of(sample.fn(*xs), name)
    assert nodes, f"the sample of {name} records no {name} node"
    for node in nodes:
        arrays = [t._data for t in node.inputs]
        y = node.out if "output" in prim.saves else _ShapeOnly(node.out)
        args = arrays if "inputs" in prim.saves else [_ShapeOnly(a) for a in arrays]
        g = np.ones_like(node.out)
        for i, t in enumerate(node.inputs):
            rule = prim.vjp_rule(i)
            if rule is not None and t.requires_grad:
                want = rule(g, node.out, *arrays, **node.params)
                got = rule(g, y, *args, **node.params)    # (a device sample: compare on host)
                np.testing.assert_array_equal(to_host(got), to_host(want))
