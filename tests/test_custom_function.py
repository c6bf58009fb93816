"""`chainrule.autograd.Function`: PyTorch's custom-op interface, compared with PyTorch itself
(the same class body runs on both libraries: values, gradients, needs_input_grad and the cases
that raise), checked by gradcheck, and shown by explain under its own name and formula."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


SEEN = []


def make_functions(lib):
    """The same custom functions written against `lib` (torch or chainrule)."""
    class Cube(lib.autograd.Function):
        formula = "x³"
        derivs = ("3x²",)

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    class ScaledPair(lib.autograd.Function):
        """Two outputs, a non-tensor argument between two tensors."""
        @staticmethod
        def forward(ctx, a, k, b):
            ctx.save_for_backward(a, b)
            ctx.k = k
            return a * b * k, a + b

        @staticmethod
        def backward(ctx, g1, g2):
            a, b = ctx.saved_tensors
            SEEN.append(tuple(ctx.needs_input_grad))
            return g1 * b * ctx.k + g2, None, g1 * a * ctx.k + g2

    class MyReLU(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > 0).float()

    class Exp(lib.autograd.Function):
        """Saves its output."""
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    return Cube, ScaledPair, MyReLU, Exp


CR = make_functions(cr)
TORCH = make_functions(torch)


def _both(fn):
    """fn(lib, functions) on chainrule and on torch."""
    return fn(cr, CR), fn(torch, TORCH)


def _np(t):
    return None if t is None else np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def test_values_and_gradients_match_pytorch():
    def run(lib, fns):
        Cube, ScaledPair, MyReLU, Exp = fns
        a = lib.tensor([0.5, -1.5, 2.0], requires_grad=True)
        b = lib.tensor([1.0, 2.0, -3.0], requires_grad=True)
        p, q = ScaledPair.apply(Cube.apply(a), 2.0, MyReLU.apply(b))
        loss = (Exp.apply(p * 0.1) * q).sum()
        loss.backward()
        return [_np(loss), _np(p), _np(q), _np(a.grad), _np(b.grad)]
    ours, theirs = _both(run)
    for x, y in zip(ours, theirs):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_needs_input_grad_and_output_flags_match_pytorch():
    def run(lib, fns):
        ScaledPair = fns[1]
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0])
        p, q = ScaledPair.apply(a, 3.0, b)
        ctx_seen = []
        (p.sum() + q.sum()).backward()
        ctx_seen = p.grad_fn is not None, q.requires_grad
        with lib.no_grad():
            r, _ = ScaledPair.apply(a, 3.0, b)
        return ctx_seen, r.requires_grad, _np(a.grad)
    (ours, ours_r, ours_g), (theirs, theirs_r, theirs_g) = _both(run)
    assert ours == theirs and ours_r == theirs_r is False
    np.testing.assert_allclose(ours_g, theirs_g)


def test_backward_sees_needs_input_grad_like_pytorch():
    seen = {}
    for name, lib, fns in (("cr", cr, CR), ("torch", torch, TORCH)):
        ScaledPair = fns[1]
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0])
        p, q = ScaledPair.apply(a, 3.0, b)
        SEEN.clear()
        (p.sum() + q.sum()).backward()
        seen[name] = list(SEEN)
    assert seen["cr"] == seen["torch"] == [(True, False, False)]


def test_backward_runs_once_per_pass_for_several_inputs():
    calls = []

    class Mul(cr.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            a, b = ctx.saved_tensors
            return g * b, g * a
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    Mul.apply(a, b).sum().backward()
    assert len(calls) == 1
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]


def test_gradcheck_and_gradgradcheck_a_custom_function():
    Cube, ScaledPair, _, Exp = CR
    x = cr.tensor([0.5, -1.5, 2.0])
    y = cr.tensor([1.0, 2.0, -3.0])
    assert cr.gradcheck(Cube.apply, [x])
    assert cr.gradcheck(lambda a, b: ScaledPair.apply(a, 3.0, b), [x, y])
    assert cr.gradcheck(Exp.apply, [x])
    # backward is written with Tensor operations, so it is differentiable itself
    assert cr.gradgradcheck(Cube.apply, [x])
    assert cr.gradgradcheck(lambda a, b: ScaledPair.apply(a, 3.0, b), [x, y])
    assert cr.gradgradcheck(Exp.apply, [x])


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x          # should be 2x
    with pytest.raises(cr.errors.GradcheckError):
        cr.gradcheck(Wrong.apply, [cr.tensor([1.0, 2.0])])


def test_second_derivative_matches_pytorch():
    def run(lib, fns):
        Cube = fns[0]
        x = lib.tensor([0.5, -1.5], requires_grad=True)
        (g,) = lib.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        return _np(g), _np(h)
    ours, theirs = _both(run)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("case", ["too_few", "not_none_for_constant", "bad_shape",
                                  "saved_input_modified", "saved_output_modified"])
def test_errors_are_raised_where_pytorch_raises(case):
    def run(lib):
        class TooFew(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, g):
                return g * 2

        class NotNone(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, g):
                return g, g

        class BadShape(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return lib.ones(3)

        Exp = (CR if lib is cr else TORCH)[3]
        Cube = (CR if lib is cr else TORCH)[0]
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        if case == "too_few":
            out = TooFew.apply(x, 2.0)
        elif case == "not_none_for_constant":
            out = NotNone.apply(x, 2.0)
        elif case == "bad_shape":
            out = BadShape.apply(x)
        elif case == "saved_input_modified":
            h = x * 1
            out = Cube.apply(h)
            with lib.no_grad():
                h.add_(1)
        else:
            out = Exp.apply(x)
            with lib.no_grad():
                out.mul_(2)
        out.sum().backward()
    with pytest.raises(RuntimeError) as theirs:
        run(torch)
    with pytest.raises(RuntimeError) as ours:
        run(cr)
    # the same words as PyTorch's message, where it has a fixed text
    key = {"too_few": "incorrect number of gradients", "not_none_for_constant":
           "different than None", "bad_shape": "invalid gradient",
           "saved_input_modified": "modified by an inplace operation",
           "saved_output_modified": "modified by an inplace operation"}[case]
    assert key in str(theirs.value) and key in str(ours.value)


def test_non_differentiable_outputs_and_setup_context():
    class SortWithIndex(cr.autograd.Function):
        @staticmethod
        def forward(x):
            idx = cr.tensor(np.argsort(x.numpy(), kind="stable"))
            return x[idx], idx

        @staticmethod
        def setup_context(ctx, inputs, output):
            _, idx = output
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            ctx.n = inputs[0].shape[0]

        @staticmethod
        def backward(ctx, g, g_idx):
            (idx,) = ctx.saved_tensors
            assert g_idx.tolist() == [0, 0, 0]       # zeros for the non-differentiable output
            out = np.zeros(ctx.n, dtype=g.numpy().dtype)
            out[idx.numpy()] = g.numpy()
            return cr.tensor(out)
    x = cr.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, idx = SortWithIndex.apply(x)
    assert values.requires_grad and not idx.requires_grad
    assert values.tolist() == [1.0, 2.0, 3.0] and idx.tolist() == [1, 2, 0]
    (values * cr.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


def test_identity_output_and_once_differentiable():
    class Identity(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        @cr.autograd.once_differentiable
        def backward(ctx, g):
            return g * 2
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = Identity.apply(x)
    assert y is not x and y.grad_fn is not None and x.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_calling_an_instance_is_an_error():
    with pytest.raises(RuntimeError, match="apply"):
        CR[0]()(cr.tensor(1.0))


def test_explain_shows_the_class_name_and_formula():
    Cube, ScaledPair = CR[0], CR[1]
    w = cr.tensor(0.5, requires_grad=True, name="w")
    text = cr.explain(Cube.apply(w * 2.0), verify=True).text()
    assert "h1³" in text and "3h1²" in text and "✗ rule" not in text
    a = cr.tensor([1.0, 2.0], requires_grad=True, name="a")
    b = cr.tensor([3.0, 4.0], requires_grad=True, name="b")
    p, q = ScaledPair.apply(a, 2.0, b)
    text = cr.explain((p * q).sum(), verify=True).text()
    assert "ScaledPair(a, b)" in text and "✗ rule" not in text
    # the node is the class's own primitive, not a built-in one
    assert p.grad_fn is not None
    assert "ScaledPair" not in cr.ops.REGISTRY


def test_a_custom_function_trains_like_pytorch():
    def train(lib, fns):
        MyReLU = fns[2]
        rng = np.random.default_rng(0)
        w1 = lib.tensor(rng.standard_normal((4, 8)).astype(np.float32), requires_grad=True)
        w2 = lib.tensor(rng.standard_normal((8, 1)).astype(np.float32), requires_grad=True)
        x = lib.tensor(rng.standard_normal((16, 4)).astype(np.float32))
        y = lib.tensor(rng.standard_normal((16, 1)).astype(np.float32))
        losses = []
        for _ in range(5):
            loss = ((MyReLU.apply(x @ w1) @ w2 - y) ** 2).mean()
            losses.append(loss.item())
            loss.backward()
            with lib.no_grad():
                for w in (w1, w2):
                    w -= 0.05 * w.grad
                    w.grad = None
        return losses
    ours, theirs = _both(train)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
