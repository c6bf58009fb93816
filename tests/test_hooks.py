"""Hooks with PyTorch's semantics: Tensor.register_hook (leaf and non-leaf, replacing the
gradient, autograd.grad, create_graph, removal) and Module's forward pre-hooks, forward hooks
and full backward hooks; each compared with PyTorch running the same code."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _np(t):
    return None if t is None else t.detach().numpy().copy()


def _both(fn):
    return fn(cr), fn(torch)


def test_tensor_hooks_match_pytorch():
    def run(lib):
        log = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        hx = x.register_hook(lambda g: log.append(("x", _np(g))) or g * 10)
        y = x * 2
        hy = y.register_hook(lambda g: log.append(("y", _np(g))) or g + 1)
        z = (y * y).sum()
        (gx,) = lib.autograd.grad(z, [x], retain_graph=True)   # hooks run for grad too
        z.backward()
        first = _np(x.grad)
        hx.remove()
        hy.remove()
        x.grad = None
        (x * x * 2).sum().backward()                          # removed: not called
        x.register_hook(lambda g: None)                       # None keeps the gradient
        x.grad = None
        (x * 3).sum().backward()
        return log, _np(gx), first, _np(x.grad)
    ours, theirs = _both(run)
    assert [k for k, _ in ours[0]] == [k for k, _ in theirs[0]] == ["y", "x", "y", "x"]
    for (_, a), (_, b) in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, b)
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, b)


def test_hook_on_a_tensor_used_twice_sees_the_summed_gradient():
    def run(lib):
        seen = []
        x = lib.tensor([1.0, -2.0], requires_grad=True)
        h = x.exp()
        h.register_hook(lambda g: seen.append(_np(g)))
        (h * 2 + h.sin()).sum().backward()
        return seen, _np(x.grad)
    ours, theirs = _both(run)
    assert len(ours[0]) == len(theirs[0]) == 1
    np.testing.assert_allclose(ours[0][0], theirs[0][0], rtol=1e-6)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)


def test_hook_under_create_graph_gets_a_tensor_in_the_graph():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x ** 3
        y.register_hook(lambda g: g * x)        # a hook that depends on x
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        return _np(g), _np(h)
    ours, theirs = _both(run)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b)


def test_hook_errors_match_pytorch():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError, match="doesn't require grad"):
            lib.tensor([1.0]).register_hook(print)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g: lib.ones(3))
        with pytest.raises(RuntimeError):
            (x * 2).sum().backward()


def test_handle_is_a_context_manager():
    x = cr.tensor([1.0], requires_grad=True)
    with x.register_hook(lambda g: g * 0):
        (x * 1).sum().backward()
    assert x.grad.tolist() == [0.0]
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0]


def _net(lib):
    rng = np.random.default_rng(0)
    net = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
    with lib.no_grad():
        for p in net.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    return net


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_module_hooks_match_pytorch():
    def run(lib):
        net = _net(lib)
        log = []
        handles = [
            net[0].register_forward_pre_hook(lambda m, args: (args[0] * 2,)),
            net[1].register_forward_hook(lambda m, args, out: out + 1),
            net[2].register_forward_hook(lambda m, args, out: log.append(("fwd", _np(out)))),
            net[2].register_full_backward_hook(lambda m, gi, go: log.append(
                ("bw2", [_np(g) for g in gi], [_np(g) for g in go]))),
            net[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,)),
            # its input needs no gradient: called with grad_input (None,)
            net[0].register_full_backward_hook(lambda m, gi, go: log.append(
                ("bw0", [_np(g) for g in gi], [_np(g) for g in go]))),
        ]
        x = lib.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
        out = net(x)
        out.sum().backward()
        grads = [_np(p.grad) for p in net.parameters()]
        for h in handles:
            h.remove()
        return _np(out), grads, log, _np(net(x))
    ours, theirs = _both(run)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert [e[0] for e in ours[2]] == [e[0] for e in theirs[2]] == ["fwd", "bw2", "bw0"]
    for a, b in zip(ours[2], theirs[2]):
        for x, y in zip(a[1:], b[1:]):
            if isinstance(x, list):
                assert len(x) == len(y)
                for u, v in zip(x, y):
                    assert (u is None) == (v is None)
                    if u is not None:
                        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
            else:
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-5, atol=1e-5)   # hooks removed


def test_backward_hook_with_an_input_that_requires_grad():
    def run(lib):
        net = _net(lib)
        seen = []
        net.register_full_backward_hook(lambda m, gi, go: seen.append((_np(gi[0]), _np(go[0]))))
        x = lib.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
        (net(x) ** 2).sum().backward()
        return seen, _np(x.grad)
    ours, theirs = _both(run)
    assert len(ours[0]) == len(theirs[0]) == 1
    for a, b in zip(ours[0][0], theirs[0][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-5)


def test_forward_hooks_with_kwargs_and_prepend():
    order = []
    layer = cr.nn.Linear(2, 2)
    layer.register_forward_hook(lambda m, a, o: order.append("second"))
    layer.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    layer.register_forward_pre_hook(lambda m, a, kw: ((a[0] * 0,), kw), with_kwargs=True)
    out = layer(cr.ones(1, 2))
    assert order == ["first", "second"]
    np.testing.assert_allclose(out.numpy(), layer.bias.numpy()[None])
