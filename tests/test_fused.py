"""The fused primitives (chainrule.ops.fused) against the compositions they replace and
against PyTorch; the registry-generated tests (tests/primitive_specs.py) add gradcheck,
gradgradcheck and parity samples for each through nn.functional."""
import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.ops import fused

LABELS = np.array([0, 2, 1, 3, 2])


def _t(a, grad=True):
    return cr.tensor(a, dtype=cr.float64, requires_grad=grad)


def _grads(fn, arrays):
    xs = [_t(a) for a in arrays]
    out = fn(*xs)
    (out * cr.tensor(np.linspace(0.5, 1.5, out._data.size).reshape(out.shape))).sum().backward()
    return out.numpy(), [x.grad.numpy() for x in xs]


def _composite_linear(x, w, b):
    return cr.matmul(x, w.mT) + b


def _composite_xent(x, labels, reduction):
    per = -cr.log_softmax(x, 1)[np.arange(x.shape[0]), labels]
    return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]


def _composite_probs(x, p, reduction):
    per = -(cr.log_softmax(x, 1) * p).sum(1)
    return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]


def test_linear_equals_matmul_plus_bias():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(6, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)]
    val, grads = _grads(fused.linear, arrays)
    ref_val, ref_grads = _grads(_composite_linear, arrays)
    np.testing.assert_allclose(val, ref_val, rtol=1e-12)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-12)


def test_linear_gradients_are_contiguous_float32():
    """The weight gradient comes back in (out, in) layout, not as a transposed view."""
    x = cr.randn(8, 5)
    layer_w, layer_b = cr.randn(3, 5, requires_grad=True), cr.zeros(3, requires_grad=True)
    F.linear(x, layer_w, layer_b).sum().backward()
    assert layer_w.grad.numpy().flags.c_contiguous and layer_w.grad.dtype == cr.float32
    assert layer_b.grad.dtype == cr.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_equals_log_softmax_composition(reduction):
    x = np.random.default_rng(1).normal(size=(5, 4)) * 3
    val, (g,) = _grads(lambda z: fused.softmax_cross_entropy(z, LABELS, reduction), [x])
    ref_val, (ref_g,) = _grads(lambda z: _composite_xent(z, LABELS, reduction), [x])
    np.testing.assert_allclose(val, ref_val, rtol=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-14)
    p = np.random.default_rng(2).dirichlet(np.ones(4), size=5)
    val, grads = _grads(lambda z, q: fused.softmax_cross_entropy_probs(z, q, 1, reduction), [x, p])
    ref_val, ref_grads = _grads(lambda z, q: _composite_probs(z, q, reduction), [x, p])
    np.testing.assert_allclose(val, ref_val, rtol=1e-12)
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_fused_gradchecks_directly():
    x = np.random.default_rng(3).normal(size=(3, 4, 2))
    p = np.ascontiguousarray(np.random.default_rng(4).dirichlet(np.ones(4), size=(3, 2))
                             .transpose(0, 2, 1))
    assert cr.gradcheck(lambda z, q: fused.softmax_cross_entropy_probs(z, q, 1, "sum"),
                        [_t(x, False), _t(p, False)])
    assert cr.gradgradcheck(lambda z: fused.softmax_cross_entropy(z, LABELS[:3], "sum"),
                            [_t(x[:, :, 0], False)])


def test_stable_for_huge_logits():
    x = cr.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, cr.tensor([1]))
    loss.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(2e4)
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, -1.0, 0.0]], atol=1e-6)


def test_functional_falls_back_where_the_fused_path_does_not_apply():
    """weight, ignore_index and label smoothing still take the composed path (and work)."""
    x = _t(np.random.default_rng(5).normal(size=(5, 4)))
    labels = cr.tensor(np.array([0, -100, 1, 3, 2]))
    loss = F.cross_entropy(x, labels)
    assert "softmax_cross_entropy" not in {n.prim.name for n in cr.autograd.toposort([loss._node])}
    ref = _composite_xent(x[np.array([0, 2, 3, 4])], np.array([0, 1, 3, 2]), "mean")
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, cr.tensor(LABELS), reduction="avg")
    with pytest.raises(IndexError, match="out of range"):
        F.cross_entropy(x, cr.tensor(np.array([0, 1, 2, 3, 4])))


def test_matches_torch_in_an_mlp_step():
    torch = pytest.importorskip("torch", reason="torch is not installed: the parity check "
                                                "needs it (pip install torch)")
    rng = np.random.default_rng(6)
    x, w1, b1, w2, b2 = (rng.normal(size=s) for s in [(5, 6), (4, 6), (4,), (3, 4), (3,)])
    y = np.array([0, 2, 1, 1, 0])
    ps = [_t(a) for a in (w1, b1, w2, b2)]
    F.cross_entropy(F.linear(F.relu(F.linear(_t(x, False), ps[0], ps[1])), ps[2], ps[3]),
                    cr.tensor(y)).backward()
    tps = [torch.tensor(a, requires_grad=True) for a in (w1, b1, w2, b2)]
    tf = torch.nn.functional
    tf.cross_entropy(tf.linear(tf.relu(tf.linear(torch.tensor(x), tps[0], tps[1])), tps[2],
                               tps[3]), torch.tensor(y)).backward()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_max_pool_ties_and_layout_match_torch():
    """Ties (ReLU zeros) send the gradient to the window's first largest entry, as in
    PyTorch, also for a channels-last input (a convolution's output) and odd sizes."""
    torch = pytest.importorskip("torch", reason="torch is not installed: the parity check "
                                                "needs it (pip install torch)")
    a = np.maximum(np.random.default_rng(7).normal(size=(2, 5, 7, 3)), 0).transpose(0, 3, 1, 2)
    x = cr.tensor(a, requires_grad=True)
    out = F.max_pool2d(x, 2)
    assert "max_pool2d" in {n.prim.name for n in cr.autograd.toposort([out._node])}
    w = np.random.default_rng(8).uniform(0.5, 1.5, out.shape)
    (out * cr.tensor(w)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 2)
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
