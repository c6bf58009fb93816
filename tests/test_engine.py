"""The backward engine: sums over paths, deep and wide graphs, graph lifetime, grad modes,
leaves and retained grads, higher order, dtypes, and in-place safety."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import GraphError, ShapeError


def f64(value, requires_grad=True):
    return cr.tensor(value, dtype=cr.float64, requires_grad=requires_grad)


# ---- the multivariate chain rule ----
def test_two_paths_add_up():
    """z = x·y with x = s², y = sin s: dz/ds = y·2s + x·cos s (sum over both paths)."""
    s = f64(0.7)
    x, y = s * s, s.sin()
    (x * y).backward()
    expect = np.sin(0.7) * 2 * 0.7 + 0.7 ** 2 * np.cos(0.7)
    assert s.grad.item() == pytest.approx(expect, rel=1e-14)


def test_diamond_reused_intermediate():
    """h = a·a used by two branches that rejoin: every path counted exactly once."""
    a = f64(1.3)
    h = a * a
    out = h.exp() + h * 3.0 + h       # dh/da = 2a; dout/dh = e^h + 4
    out.backward()
    assert a.grad.item() == pytest.approx((np.exp(1.3 ** 2) + 4) * 2 * 1.3, rel=1e-14)


def test_wide_fan_out_ten_thousand_uses():
    """One leaf used 10,000 times; each use multiplied by its own constant."""
    x = f64(2.0)
    coeffs = np.arange(1, 10_001, dtype=np.float64) / 10_000
    total = x * coeffs[0]
    for c in coeffs[1:]:
        total = total + x * c
    total.backward()
    assert x.grad.item() == pytest.approx(coeffs.sum(), rel=1e-12)


def test_fan_out_through_one_tensor_op():
    """The same fan-out as a tensor: expand to 10,000 copies, each weighted."""
    x = f64([2.0, -1.0])
    w = np.random.default_rng(0).normal(size=(10_000, 2))
    (x.expand(10_000, 2) * cr.tensor(w, dtype=cr.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), w.sum(0), rtol=1e-12)


def test_million_node_chain_backward_without_recursion():
    """1,000,000 negations in a chain: an iterative engine walks it (a recursive one would hit
    RecursionError); the gradient is (-1)^n."""
    x = cr.tensor(1.5, requires_grad=True)
    y = x
    for _ in range(1_000_001):
        y = -y
    y.backward()
    assert y.item() == -1.5
    assert x.grad.item() == -1.0


# ---- graph lifetime ----
def test_second_backward_through_freed_graph_is_a_clear_error():
    x = f64(2.0)
    y = (x * x).exp()
    y.backward()
    with pytest.raises(GraphError, match="second time.*retain_graph=True"):
        y.backward()


def test_backward_frees_the_intermediate_values():
    import weakref
    x = f64(np.ones(1000))
    y = (x * 2.0).exp().sum()
    middle = weakref.ref(y._node.inputs[0]._node.inputs[0])   # the tensor x * 2
    assert middle() is not None
    y.backward()
    assert middle() is None          # released with its node: nothing keeps it alive


def test_backward_of_several_outputs_sums_them():
    x = f64([1.0, 2.0])
    h = x * x
    cr.autograd.backward([h.sum(), (h * 3.0).sum()])
    assert x.grad.tolist() == [8.0, 16.0]
    x.grad = None
    h = x * x
    cr.autograd.backward([h, h.sum()], [np.ones(2), None])   # a scalar output needs none
    assert x.grad.tolist() == [4.0, 8.0]


def test_retain_graph_allows_a_second_backward_and_accumulates():
    x = f64(3.0)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 12.0   # 6 + 6: .grad accumulates across calls


def test_grad_accumulates_across_two_graphs_and_resets_with_none():
    x = f64([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    (x * 2.0).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_non_scalar_backward_needs_gradient():
    x = f64([1.0, 2.0])
    y = x * x
    with pytest.raises(GraphError, match="not a scalar; pass gradient="):
        y.backward()
    y.backward(gradient=np.array([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 40.0]


def test_gradient_of_the_wrong_shape_is_rejected():
    y = f64([1.0, 2.0]) * 2.0
    with pytest.raises(ShapeError, match=r"gradient has shape \(3,\)"):
        y.backward(gradient=np.ones(3))


def test_backward_on_a_tensor_without_graph_says_why():
    with pytest.raises(GraphError, match="does not require grad"):
        cr.tensor([1.0]).sum().backward()


# ---- grad modes ----
def test_no_grad_enable_grad_set_grad_enabled_nest():
    x = f64(1.0)
    with cr.no_grad():
        assert not (x * 2).requires_grad
        with cr.enable_grad():
            assert (x * 2).requires_grad
        assert not cr.is_grad_enabled()
    with cr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cr.is_grad_enabled() and (x * 2).requires_grad


def test_grad_modes_as_decorators_restore_on_error():
    x = f64(1.0)

    @cr.no_grad()
    def frozen(t):
        return t * 2

    @cr.set_grad_enabled(False)
    def failing(t):
        raise ValueError("boom")

    @cr.enable_grad()
    def tracked(t):
        return t * 2
    assert not frozen(x).requires_grad
    with pytest.raises(ValueError):
        failing(x)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        assert tracked(x).requires_grad
    assert frozen.__name__ == "frozen"

    @cr.no_grad                 # bare, without the call (PyTorch allows both)
    def bare(t):
        return t * 2

    @cr.enable_grad
    def bare_tracked(t):
        return t * 2
    assert not bare(x).requires_grad and bare.__name__ == "bare"
    with cr.no_grad():
        assert bare_tracked(x).requires_grad


def test_detach_cuts_the_graph_and_shares_values():
    x = f64([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    (x * d).sum().backward()    # d is a constant: grad is d, not 4x
    assert x.grad.tolist() == [2.0, 4.0]


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = f64([1.0, 2.0])
    h = x * 3.0
    h.retain_grad()
    k = h * 2.0                 # not retained
    (h * k).sum().backward()    # Σ 2h²: d/dh = k + 2h (two paths) = 4h
    np.testing.assert_allclose(h.grad.numpy(), 4 * h.numpy())
    assert k.grad is None
    np.testing.assert_allclose(x.grad.numpy(), 12 * h.numpy())


# ---- higher order ----
def test_create_graph_gives_second_and_third_derivatives():
    x = f64(0.5)
    y = x.sin() * x ** 3
    (g,) = cr.autograd.grad(y, x, create_graph=True)
    (h,) = cr.autograd.grad(g, x, create_graph=True)
    (t,) = cr.autograd.grad(h, x)
    s, c, v = np.sin(0.5), np.cos(0.5), 0.5
    assert g.item() == pytest.approx(c * v ** 3 + 3 * s * v ** 2, rel=1e-13)
    assert h.item() == pytest.approx(-s * v ** 3 + 6 * c * v ** 2 + 6 * s * v, rel=1e-13)
    assert t.item() == pytest.approx(-c * v ** 3 - 9 * s * v ** 2 + 18 * c * v + 6 * s,
                                     rel=1e-13)


def test_backward_with_create_graph_builds_a_differentiable_grad():
    x = f64([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.sum().backward()                   # d/dx Σ 3x² = 6x
    assert x.grad.tolist() == [6.0, 12.0]


def test_autograd_grad_allow_unused_and_no_touching_dot_grad():
    x, unused = f64(2.0), f64(5.0)
    y = x * x
    with pytest.raises(GraphError, match="allow_unused=True"):
        cr.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = cr.autograd.grad(y, [x, unused], allow_unused=True)
    assert gx.item() == 4.0 and gu is None
    assert x.grad is None and unused.grad is None


def test_autograd_grad_of_an_intermediate():
    x = f64(2.0)
    h = x * 3.0
    (gh,) = cr.autograd.grad((h * h).sum(), h)
    assert gh.item() == 12.0


# ---- dtypes ----
def test_float32_stays_float32_with_python_scalars():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == cr.float32
    y = (2.0 * x + 1) / 3.0 - x ** 2 + 0.5 ** x
    assert y.dtype == cr.float32
    y.sum().backward()
    assert x.grad.dtype == cr.float32


def test_float64_on_request_and_mixed_gradients_take_each_leafs_dtype():
    a = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([2.0], requires_grad=True)              # float32
    out = a * b
    assert out.dtype == cr.float64
    out.sum().backward()
    assert a.grad.dtype == cr.float64 and b.grad.dtype == cr.float32
    cr.set_default_dtype(cr.float64)
    assert cr.tensor(1.0).dtype == cr.float64 and cr.randn(2).dtype == cr.float64


def test_integer_operands_take_the_float_dtype_as_in_pytorch():
    ints, f32 = cr.tensor([1, 2]), cr.tensor([0.5, 1.5])
    assert ints.dtype == cr.int64 and (ints + 1).dtype == cr.int64
    assert (ints * 2.5).dtype == cr.float32          # a Python float: the default dtype
    assert (f32 + ints).dtype == cr.float32 and (ints * f32).dtype == cr.float32
    assert (cr.tensor([True, False]) * f32).dtype == cr.float32
    assert (ints / 2).dtype == cr.float32 and (ints / 2).tolist() == [0.5, 1.0]
    assert (3 / ints).dtype == cr.float32
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * ints).sum().backward()
    assert x.grad.dtype == cr.float32 and x.grad.tolist() == [1.0, 2.0]


def test_casting_to_an_integer_dtype_leaves_the_graph():
    x = cr.tensor([1.5, -2.5], requires_grad=True)
    i = x.astype(cr.int64)
    assert i.dtype == cr.int64 and not i.requires_grad and i.tolist() == [1, -2]
    d = x.double()
    assert d.dtype == cr.float64 and d.requires_grad
    d.sum().backward()
    assert x.grad.dtype == cr.float32 and x.grad.tolist() == [1.0, 1.0]


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(cr.errors.DTypeError, match="floating"):
        cr.tensor([1, 2], requires_grad=True)


# ---- gradients never share memory ----
def test_leaf_grads_never_share_arrays():
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    c = f64([[5.0, 6.0]])
    ((a + b) + c.reshape(2)).sum().backward()     # add passes one array to all three
    grads = [a.grad.numpy(), b.grad.numpy(), c.grad.numpy()]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.shares_memory(grads[i], grads[j])
    a.grad.numpy()[0] = 99.0
    assert b.grad.tolist() == [1.0, 1.0] and c.grad.tolist() == [[1.0, 1.0]]


def test_grads_do_not_share_with_the_gradient_argument_or_retained_grads():
    seed = np.ones(2)
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    h = a * 1.0
    h.retain_grad()
    (h + b).backward(gradient=seed)
    arrays = [seed, a.grad.numpy(), b.grad.numpy(), h.grad.numpy()]
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            assert not np.shares_memory(arrays[i], arrays[j]), (i, j)
    leaf = f64([1.0, 2.0])
    leaf.backward(gradient=seed)
    assert not np.shares_memory(leaf.grad.numpy(), seed)


# ---- in-place safety ----
def test_in_place_change_of_a_saved_input_is_caught():
    x = f64([1.0, 2.0])
    w = cr.tensor([3.0, 4.0], dtype=cr.float64)
    y = (x * w).sum()
    w += 1.0                     # w does not require grad, so this is allowed ...
    with pytest.raises(GraphError, match=r"modified in place.*version 0 -> 1"):
        y.backward()             # ... but mul saved it for x's gradient


def test_in_place_on_a_leaf_that_requires_grad_is_refused_unless_no_grad():
    x = f64([1.0, 2.0])
    with pytest.raises(GraphError, match="in-place"):
        x += 1.0
    with cr.no_grad():
        x -= 0.5
    assert x.tolist() == [0.5, 1.5] and x._version == 1
