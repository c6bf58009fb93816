"""chainrule against PyTorch in float64: values and gradients of every primitive sample, of the
composites, of the tie conventions at non-differentiable points, and of random expression
graphs built by hypothesis. Relative error (max-norm) must stay below 1e-10."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
import chainrule.nn.functional as F

from primitive_specs import all_composites, all_samples, sample_id

torch = pytest.importorskip("torch", reason="torch is not installed: the PyTorch reference "
                                             "comparison needs it (pip install torch)")

RTOL = 1e-10


def rel_err(ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"shapes differ: {ours.shape} vs {ref.shape}"
    scale = np.max(np.abs(ref), initial=0.0)
    diff = np.max(np.abs(ours - ref), initial=0.0)
    return diff if scale == 0 else diff / scale


def _weights(shape, seed=7):
    """A fixed random upstream gradient, so every output entry counts with its own weight."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def run_both(fn, torch_fn, arrays):
    """(value, grads) from chainrule and from torch for loss = Σ w ⊙ f(inputs)."""
    xs = [cr.tensor(a, dtype=cr.float64, requires_grad=True) for a in arrays]
    out = fn(*xs)
    w = _weights(out.shape)
    (out * cr.tensor(w, dtype=cr.float64)).sum().backward()
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    tout = torch_fn(torch, *ts)
    (tout * torch.tensor(w)).sum().backward()
    ours = (out.numpy(), [x.grad.numpy() if x.grad is not None else np.zeros(x.shape)
                          for x in xs])
    ref = (tout.detach().numpy(), [t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
                                   for t in ts])
    return ours, ref


def assert_parity(fn, torch_fn, arrays):
    (val, grads), (tval, tgrads) = run_both(fn, torch_fn, arrays)
    assert val.dtype == np.float64
    assert rel_err(val, tval) < RTOL, f"value: ours {val}, torch {tval}"
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        assert rel_err(g, tg) < RTOL, f"grad of input {i}: ours {g}, torch {tg}"


SAMPLES = all_samples() + all_composites()


@pytest.mark.parametrize("item", SAMPLES, ids=[sample_id(i) for i in SAMPLES])
def test_sample_matches_torch(item):
    _, sample = item
    assert_parity(sample.fn, sample.torch_fn, sample.args)


# ---- conventions at kinks and ties: the same subgradient as torch ----
Z = np.array([-1.0, 0.0, 0.0, 2.0])
TIES = {
    "relu at 0": (lambda x: x.relu(), lambda t, x: x.relu(), [Z]),
    "abs at 0": (lambda x: x.abs(), lambda t, x: x.abs(), [Z]),
    "sqrt of 4 (not a kink: sanity)": (lambda x: x.sqrt(), lambda t, x: x.sqrt(),
                                       [np.array([4.0])]),
    "max with ties (full)": (lambda x: x.max(), lambda t, x: x.max(),
                             [np.array([[1.0, 3.0], [3.0, 3.0]])]),
    "min with ties (full)": (lambda x: x.min(), lambda t, x: x.min(),
                             [np.array([[1.0, 1.0], [3.0, 2.0]])]),
    "max over axis with ties (amax)": (lambda x: x.amax(1), lambda t, x: x.amax(1),
                                       [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    "max(dim) with ties: the gradient goes to the returned index": (
        lambda x: x.max(1)[0], lambda t, x: x.max(1)[0],
        [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    "min(dim, keepdim) with ties": (
        lambda x: x.min(0, keepdim=True).values, lambda t, x: x.min(0, keepdim=True).values,
        [np.array([[1.0, 3.0, 3.0], [1.0, 2.0, 3.0]])]),
    "min over axes keepdims with ties (amin)": (
        lambda x: x.min((0, 2), keepdims=True), lambda t, x: x.amin((0, 2), keepdim=True),
        [np.array([[[0.0, 1.0], [2.0, 2.0]], [[0.0, 5.0], [2.0, 3.0]]])]),
    "maximum at ties": (cr.maximum, lambda t, a, b: t.maximum(a, b),
                        [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])]),
    "minimum at ties, broadcast": (cr.minimum, lambda t, a, b: t.minimum(a, b),
                                   [np.array([[1.0, 2.0], [0.5, 1.0]]), np.array([1.0])]),
    "clip at both bounds": (lambda x: x.clip(-1.0, 1.0), lambda t, x: x.clamp(-1.0, 1.0),
                            [np.array([-1.0, -2.0, 0.0, 1.0, 3.0])]),
    "clip with tensor bounds, lo > hi and x on a bound": (
        lambda x, lo, hi: x.clip(lo, hi), lambda t, x, lo, hi: x.clamp(lo, hi),
        [np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0, 2.5]),
         np.array([2.0, 2.0, 0.5, 2.0])]),
    "clip with lo == hi": (lambda x: x.clip(0.5, 0.5), lambda t, x: x.clamp(0.5, 0.5),
                           [np.array([0.5, 0.0, 1.0])]),
    "x ** 0 at x = 0": (lambda x: x ** 0.0, lambda t, x: x ** 0.0, [np.array([0.0, 2.0])]),
    "x ** 2 at x = 0": (lambda x: x ** 2.0, lambda t, x: x ** 2.0, [np.array([0.0, -1.0])]),
    "0 ** y for y >= 0 (exponent grad)": (
        lambda a, b: a ** b, lambda t, a, b: a ** b,
        [np.array([0.0, 0.0, 2.0]), np.array([0.0, 2.0, 0.5])]),
    "max_pool2d with ties in a window (first largest)": (
        lambda x: F.max_pool2d(x, 2), lambda t, x: t.nn.functional.max_pool2d(x, 2),
        [np.array([[[[1.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, 2.0]]]])]),
    "std of equal values (zero variance)": (lambda x: x.std(1), lambda t, x: x.std(1),
                                            [np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])]),
    "where with both branches equal": (lambda a, b: cr.where(np.array([True, False]), a, b),
                                       lambda t, a, b: t.where(t.tensor([True, False]), a, b),
                                       [np.array([1.0, 1.0]), np.array([1.0, 1.0])]),
}


@pytest.mark.parametrize("case", sorted(TIES))
def test_tie_convention_matches_torch(case):
    fn, torch_fn, arrays = TIES[case]
    assert_parity(fn, torch_fn, arrays)


def test_gradients_at_kinks_are_what_the_docs_say():
    """The conventions written in docs/conventions.md, as numbers."""
    x = cr.tensor([0.0, 0.0], dtype=cr.float64, requires_grad=True)
    (x.relu().sum() + x.abs().sum()).backward()
    assert x.grad.tolist() == [0.0, 0.0]
    m = cr.tensor([2.0, 2.0, 1.0], dtype=cr.float64, requires_grad=True)
    m.max().backward()
    assert m.grad.tolist() == [0.5, 0.5, 0.0]
    a = cr.tensor(1.0, dtype=cr.float64, requires_grad=True)
    b = cr.tensor(1.0, dtype=cr.float64, requires_grad=True)
    cr.maximum(a, b).backward()
    assert (a.grad.item(), b.grad.item()) == (0.5, 0.5)
    c = cr.tensor([-1.0, 1.0], dtype=cr.float64, requires_grad=True)
    c.clip(-1.0, 1.0).sum().backward()
    assert c.grad.tolist() == [1.0, 1.0]


# ---- random expression graphs ----
UNARY_OPS = {
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "sin": (lambda x: x.sin(), lambda x: x.sin()),
    "exp_tanh": (lambda x: x.tanh().exp(), lambda x: x.tanh().exp()),
    "log1p_sq": (lambda x: (x * x + 1.0).log(), lambda x: (x * x + 1.0).log()),
    "sqrt1p_sq": (lambda x: (x * x + 1.0).sqrt(), lambda x: (x * x + 1.0).sqrt()),
    "neg": (lambda x: -x, lambda x: -x),
    "softmax": (lambda x: x.softmax(-1), lambda x: x.softmax(-1)),
    "relu_shift": (lambda x: (x + 0.123).relu(), lambda x: (x + 0.123).relu()),
    "abs_shift": (lambda x: (x - 0.0789).abs(), lambda x: (x - 0.0789).abs()),
    "swap_back": (lambda x: x.swapaxes(-1, 0).swapaxes(-1, 0) * 1.5,
                  lambda x: x.swapaxes(-1, 0).swapaxes(-1, 0) * 1.5),
    # reductions broadcast back, so every value keeps the shape (3, 3)
    "sum_keep": (lambda x: x - 0.3 * x.sum(-1, keepdims=True),
                 lambda x: x - 0.3 * x.sum(-1, keepdim=True)),
    "max_keep": (lambda x: x * x.max(0, keepdims=True), lambda x: x * x.amax(0, keepdim=True)),
    "cube": (lambda x: x ** 3, lambda x: x ** 3),
    "clip": (lambda x: x.clip(-0.7, 0.9), lambda x: x.clamp(-0.7, 0.9)),
}
BINARY_OPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div_safe": (lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    "maximum": (cr.maximum, torch.maximum),
    "minimum": (cr.minimum, torch.minimum),
    "matmul_square": (lambda a, b: a.expand(3, 3) @ b.expand(3, 3).T,
                      lambda a, b: a.expand(3, 3) @ b.expand(3, 3).T),
    "pow_pos": (lambda a, b: (a * a + 0.5) ** b.tanh(), lambda a, b: (a * a + 0.5) ** b.tanh()),
}
FINAL = {"sum": (lambda x: x.sum(), lambda x: x.sum()),
         "mean": (lambda x: x.mean(), lambda x: x.mean()),
         "logsumexp": (lambda x: cr.logsumexp(x), lambda x: x.reshape(-1).logsumexp(0)),
         "getitem_repeat": (lambda x: x[[0, 0, 1]].sum(), lambda x: x[[0, 0, 1]].sum())}


@st.composite
def programs(draw):
    """A list of steps; each reads earlier values by index, so values fan out and rejoin.
    Every step keeps a shape that broadcasts to (3, 3)."""
    steps = []
    for k in range(draw(st.integers(2, 8))):
        n_values = 3 + k
        if draw(st.booleans()):
            op = draw(st.sampled_from(sorted(UNARY_OPS)))
            steps.append((op, draw(st.integers(0, n_values - 1))))
        else:
            op = draw(st.sampled_from(sorted(BINARY_OPS)))
            steps.append((op, draw(st.integers(0, n_values - 1)),
                          draw(st.integers(0, n_values - 1))))
    return steps, draw(st.sampled_from(sorted(FINAL))), draw(st.integers(0, 2**16))


def _interpret(steps, final, inputs, side):
    values = list(inputs)
    for op, *args in steps:
        table = UNARY_OPS if len(args) == 1 else BINARY_OPS
        values.append(table[op][side](*[values[i] for i in args]))
    mixed = values[-1] + values[-2] * 0.5   # the last two results both reach the loss
    return FINAL[final][side](mixed)


@settings(max_examples=25)
@given(programs())
def test_random_compositions_match_torch(program):
    steps, final, seed = program
    rng = np.random.default_rng(seed)
    # three shapes that broadcast together, so binary steps broadcast and sum back
    arrays = [rng.uniform(-1.5, 1.5, s) for s in [(3, 3), (3,), (3, 1)]]
    assert_parity(lambda *xs: _interpret(steps, final, xs, 0),
                  lambda t, *xs: _interpret(steps, final, xs, 1), arrays)


@settings(max_examples=10)
@given(programs())
def test_random_compositions_second_order_match_torch(program):
    """Hessian-vector products (create_graph backward) of the same random graphs."""
    steps, final, seed = program
    rng = np.random.default_rng(seed)
    a, v = rng.uniform(-1.5, 1.5, (3, 3)), rng.uniform(-1, 1, (3, 3))
    b, c = rng.uniform(-1.5, 1.5, (3, 3)), rng.uniform(-1.5, 1.5, (3, 3))

    def f(x, side):
        const = (cr.tensor(b, dtype=cr.float64), cr.tensor(c, dtype=cr.float64)) if side == 0 \
            else (torch.tensor(b), torch.tensor(c))
        return _interpret(steps, final, (x,) + const, side)
    _, hv = cr.hvp(lambda x: f(x, 0), cr.tensor(a, dtype=cr.float64),
                   cr.tensor(v, dtype=cr.float64))
    _, thv = torch.autograd.functional.hvp(lambda x: f(x, 1), torch.tensor(a), torch.tensor(v))
    assert rel_err(hv.numpy(), thv.numpy()) < 1e-9


# ---- ties everywhere: small integers make many equal values ----
from hypothesis.extra import numpy as hnp  # noqa: E402

TIE_BINARY = {"maximum": (cr.maximum, lambda t, a, b: t.maximum(a, b)),
              "minimum": (cr.minimum, lambda t, a, b: t.minimum(a, b)),
              "where(a>b)": (lambda a, b: cr.where(a > b, a * 2.0, b),
                             lambda t, a, b: t.where(a > b, a * 2.0, b))}
TIE_UNARY = {"relu": (lambda x: x.relu(), lambda t, x: x.relu()),
             "abs": (lambda x: x.abs(), lambda t, x: x.abs()),
             "clip": (lambda x: x.clip(-1.0, 1.0), lambda t, x: x.clamp(-1.0, 1.0)),
             "max": (lambda x: x.max(), lambda t, x: x.max()),
             "min(axis=0)": (lambda x: x.min(axis=0), lambda t, x: x.amin(0)),
             "max(axis=-1, keepdims)": (lambda x: x.max(-1, keepdims=True),
                                        lambda t, x: x.amax(-1, keepdim=True))}


@settings(max_examples=25)
@given(name=st.sampled_from(sorted(TIE_BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3,
                                                max_side=3),
       seed=st.integers(0, 2**16))
def test_binary_ties_with_broadcasting_match_torch(name, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.integers(-1, 2, s).astype(np.float64) for s in shapes.input_shapes)
    assert_parity(*TIE_BINARY[name], [a, b])


@settings(max_examples=25)
@given(name=st.sampled_from(sorted(TIE_UNARY)),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), seed=st.integers(0, 2**16))
def test_unary_ties_match_torch(name, shape, seed):
    x = np.random.default_rng(seed).integers(-1, 2, shape).astype(np.float64)
    assert_parity(*TIE_UNARY[name], [x])
