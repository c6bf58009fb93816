"""Property tests (hypothesis).

1. Random expression graphs built from the primitive registry — random shapes, broadcasting,
   a node reused by later ops — whose gradients must match float64 finite differences.
2. Random bad inputs (wrong shapes, dtypes, NaN, empty arrays, strings, None, dicts, ...) fed
   to the public API: the only acceptable failure is a chainrule error (never a bare NumPy or
   Python error, never a hang), and a success must agree with NumPy (no silent wrong answer).
"""
import os
import random
import signal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.errors import ChainruleError
from chainrule.ops import REGISTRY

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# ======================================================================================
# 1. random graphs against finite differences
# ======================================================================================
# Each maker takes (r, node, other) — r a random.Random seeded per step, so a program replays
# identically when gradcheck re-evaluates it — and returns the new tensor. Domain-limited ops
# get their input mapped into the domain with other primitives (log(x² + ½)), so finite
# differences stay meaningful; exp sees tanh(x) so values never explode.


def _unary(fn):
    return lambda r, x, other: fn(x)


def _fit(x, other):
    """`other` if it broadcasts with `x`, else its sum (a scalar, which always does)."""
    try:
        np.broadcast_shapes(x.shape, other.shape)
        return other
    except ValueError:
        return other.sum()


def _binary(fn):
    return lambda r, x, other: fn(x, _fit(x, other))


def _reduce(fn):
    def make(r, x, other):
        if x.ndim == 0:
            return fn(x, None, False)
        return fn(x, r.randint(-x.ndim, x.ndim - 1), r.random() < 0.5)
    return make


def _reshape(r, x, other):
    return x.reshape(tuple(reversed(x.shape))) if x.ndim > 1 else x.reshape(-1, 1)


def _transpose(r, x, other):
    return x.transpose(tuple(r.sample(range(x.ndim), x.ndim)))


def _expand(r, x, other):
    return x.expand((2,) + x.shape)


def _getitem(r, x, other):
    if x.ndim == 0:
        return x[None]
    n = x.shape[0]
    kind = r.choice(["int", "slice", "repeat", "mask"])
    if kind == "int":
        return x[r.randint(-n, n - 1)]
    if kind == "slice":
        return x[r.randint(0, n - 1):]
    if kind == "repeat":  # repeated indices: the backward must add them up
        return x[[r.randint(0, n - 1) for _ in range(r.randint(1, 4))]]
    mask = np.array([r.random() < 0.5 for _ in range(n)])
    mask[r.randint(0, n - 1)] = True
    return x[cr.tensor(mask)]


def _concatenate(r, x, other):
    if x.ndim == 0:
        return cr.stack([x, other.sum()])
    return cr.concatenate([x, x * other.sum()], axis=r.randint(0, x.ndim - 1))


def _matmul(r, x, other):
    if x.ndim == 0:
        return x * other.sum()
    k = x.shape[-1]
    if other.ndim > 0 and other.numel() % k == 0:
        return x @ other.reshape(k, -1)
    if x.ndim == 1:
        return x @ x                                  # dot product with itself (reuse)
    return x @ x.swapaxes(-1, -2)


def _where(r, x, other):
    mask = np.array([r.random() < 0.5 for _ in range(x.numel())], dtype=bool).reshape(x.shape)
    return cr.where(mask, x, _fit(x, other))


def _mean_var(r, x, other):
    """Composites over the primitives (mean, var, softmax, logsumexp) on the same graphs."""
    if x.ndim == 0 or x.shape[-1] < 2:
        return x.mean()
    return r.choice([lambda: x.var(-1), lambda: x.softmax(-1), lambda: x.logsumexp(-1)])()


MAKERS = {
    "add": _binary(cr.ops.add), "sub": _binary(cr.ops.sub), "mul": _binary(cr.ops.mul),
    "div": _binary(lambda a, b: a / (b * b + 0.5)),
    "pow": _binary(lambda a, b: (a * a + 0.5) ** b.tanh()),
    "maximum": _binary(cr.maximum), "minimum": _binary(cr.minimum),
    "neg": _unary(lambda x: -x), "exp": _unary(lambda x: x.tanh().exp()),
    "log": _unary(lambda x: (x * x + 0.5).log()), "sqrt": _unary(lambda x: (x * x + 0.5).sqrt()),
    "sin": _unary(cr.sin), "cos": _unary(cr.cos), "tanh": _unary(cr.tanh),
    "sigmoid": _unary(cr.sigmoid), "relu": _unary(cr.relu), "abs": _unary(cr.abs),
    "clip": _unary(lambda x: x.clip(-0.8, 0.9)),
    "cast": _unary(lambda x: x.astype(cr.float64)),
    "where": _where,
    "sum": _reduce(lambda x, a, k: x.sum(a, keepdims=k)),
    "max": _reduce(lambda x, a, k: x.max(a, keepdims=k)),
    "min": _reduce(lambda x, a, k: x.min(a, keepdims=k)),
    "reshape": _reshape, "transpose": _transpose, "expand": _expand, "getitem": _getitem,
    "concatenate": _concatenate, "matmul": _matmul,
}
COMPOSITES = {"mean/var/softmax/logsumexp": _mean_var}
# scatter_add has no public function: it is getitem's backward, reached by the gradgradcheck.
SECOND_ORDER_ONLY = {"scatter_add"}


def test_fuzz_covers_the_core_registry():
    assert set(MAKERS) <= set(REGISTRY)
    core = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp", "log",
            "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "clip", "cast", "where",
            "sum", "max", "min", "reshape", "transpose", "expand", "getitem", "concatenate",
            "matmul", "scatter_add"}
    assert core <= set(MAKERS) | SECOND_ORDER_ONLY


ALL_MAKERS = {**MAKERS, **COMPOSITES}


@st.composite
def graphs(draw, max_ops=6):
    """(leaf arrays, program). A program is a list of (maker, input slot, other slot, seed);
    slot i < #leaves is a leaf, later slots are earlier steps' outputs, so any node can be
    reused by several later ops (its gradient is then a sum over paths)."""
    ndim = draw(st.integers(0, 3))
    base = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    n_leaves = draw(st.integers(1, 3))
    shapes = []
    for _ in range(n_leaves):        # each leaf broadcasts against the base shape
        keep = draw(st.integers(0, ndim))
        shapes.append(tuple(1 if draw(st.booleans()) else n for n in base[ndim - keep:]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    leaves = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    names = draw(st.lists(st.sampled_from(sorted(ALL_MAKERS)), min_size=1, max_size=max_ops))
    program = []
    for name in names:
        n_slots = n_leaves + len(program)
        program.append((name, draw(st.integers(0, n_slots - 1)),
                        draw(st.integers(0, n_slots - 1)), draw(st.integers(0, 2 ** 31 - 1))))
    return leaves, program


def replay(program, leaves):
    """Run the program on `leaves`; the scalar output weighs every entry of the last node
    (and of every unused node) with fixed, distinct weights so no gradient is trivially uniform."""
    slots = list(leaves)
    for name, i, j, seed in program:
        slots.append(ALL_MAKERS[name](random.Random(seed), slots[i], slots[j]))
    total = 0.0
    for k, t in enumerate(slots[len(leaves):]):
        w = np.linspace(0.5, 1.5, t.numel()).reshape(t.shape) * (k + 1)
        total = total + (t * cr.tensor(w)).sum()
    return total


# Moderate by default; CR_FUZZ_SCALE=50 runs fifty times as many examples for a deep hunt.
SCALE = int(os.environ.get("CR_FUZZ_SCALE", "1"))


@settings(max_examples=60 * SCALE)
@given(graphs())
def test_random_graph_gradients_match_finite_differences(case):
    leaves, program = case
    inputs = [cr.tensor(a) for a in leaves]
    assert cr.gradcheck(lambda *xs: replay(program, xs), inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


@settings(max_examples=12 * SCALE)
@given(graphs(max_ops=3))
def test_random_graph_second_derivatives(case):
    leaves, program = case
    inputs = [cr.tensor(a) for a in leaves]
    assert cr.gradgradcheck(lambda *xs: replay(program, xs), inputs, atol=1e-4, rtol=1e-3)


# ======================================================================================
# 2. bad inputs to the public API
# ======================================================================================
def _arrays():
    """Arrays of every dtype family, 0-d to 3-d, empty ones included, NaN/inf in the floats."""
    return st.one_of(
        hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
                   elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
        hnp.arrays(st.sampled_from([np.float32, np.int64, np.int32, np.bool_]),
                   hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))


BAD = st.one_of(
    st.none(), st.text(max_size=3), st.binary(max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.integers(-6, 6), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.just(1e300),
    st.tuples(st.integers(-4, 4), st.integers(-4, 4)),
    st.lists(st.integers(-4, 4), max_size=3),
    st.lists(st.text(max_size=1), min_size=1, max_size=2),
    st.just([[1.0, 2.0], [3.0]]),                     # ragged
    st.just(np.array([object(), 1], dtype=object)),
    st.just(slice(None, None, -1)), st.just(Ellipsis),
    _arrays(),
    _arrays().map(cr.tensor),
)


def _np(v):
    return v._data if isinstance(v, cr.Tensor) else v


def _keep(a, shape):
    """PyTorch's expand: -1 keeps an existing dimension (NumPy has no such spelling)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    lead = len(shape) - a.ndim
    return tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))


def _axis(a, b):
    """NumPy wants axis tuples; chainrule also takes lists, and axis 0 or -1 of a 0-d tensor
    (as PyTorch does): the same reduction in NumPy's spelling."""
    b = tuple(b) if isinstance(b, list) else b
    if a.ndim == 0 and b in (0, -1, (0,), (-1,)):
        return None
    return b


# (name, call(x, bad), NumPy reference(x_array, bad) or None where NumPy has no equivalent)
API = [
    ("add", lambda x, b: x + b, lambda a, b: a + _np(b)),
    ("mul", lambda x, b: b * x, lambda a, b: _np(b) * a),
    ("div", lambda x, b: x / b, lambda a, b: a / _np(b)),
    ("pow", lambda x, b: x ** b, lambda a, b: a ** _np(b)),
    ("maximum", lambda x, b: cr.maximum(x, b), lambda a, b: np.maximum(a, _np(b))),
    ("matmul", lambda x, b: x @ b, lambda a, b: a @ _np(b)),
    ("where", lambda x, b: cr.where(b, x, 0.0), lambda a, b: np.where(_np(b), a, 0.0)),
    ("exp", lambda x, b: cr.exp(b), lambda a, b: np.exp(_np(b))),
    ("log", lambda x, b: cr.log(b), lambda a, b: np.log(_np(b))),
    ("relu", lambda x, b: cr.relu(b), lambda a, b: np.maximum(_np(b), 0)),
    ("sigmoid", lambda x, b: cr.sigmoid(b), None),
    ("softmax", lambda x, b: cr.softmax(b), None),
    ("logsumexp", lambda x, b: cr.logsumexp(b), None),
    ("reshape", lambda x, b: x.reshape(b), lambda a, b: a.reshape(b)),
    ("sum(axis)", lambda x, b: x.sum(axis=b), lambda a, b: a.sum(axis=_axis(a, b))),
    ("max(axis)", lambda x, b: x.max(axis=b), lambda a, b: a.max(axis=_axis(a, b))),
    ("mean(axis)", lambda x, b: x.mean(axis=b), lambda a, b: a.mean(axis=_axis(a, b))),
    ("sum(b)", lambda x, b: cr.sum(b), lambda a, b: np.sum(_np(b))),
    ("mean(b)", lambda x, b: cr.mean(b), None),
    ("max(b)", lambda x, b: cr.max(b), lambda a, b: np.max(_np(b))),
    ("transpose", lambda x, b: x.transpose(b), lambda a, b: np.transpose(a, b)),
    ("getitem", lambda x, b: x[b], lambda a, b: a[_np(b)]),
    ("expand", lambda x, b: x.expand(b), lambda a, b: np.broadcast_to(a, _keep(a, b))),
    ("squeeze", lambda x, b: x.squeeze(b), None),
    ("unsqueeze", lambda x, b: x.unsqueeze(b), lambda a, b: np.expand_dims(a, b)),
    ("flatten", lambda x, b: x.flatten(b), None),
    ("concatenate", lambda x, b: cr.concatenate([x, b]),
     lambda a, b: np.concatenate([a, _np(b)])),
    ("stack", lambda x, b: cr.stack([x, b]), lambda a, b: np.stack([a, _np(b)])),
    ("clip", lambda x, b: x.clip(b, None), lambda a, b: np.clip(a, _np(b), None)),
    ("split", lambda x, b: x.split(b), None),
    ("astype", lambda x, b: x.astype(b), None),
    ("tensor", lambda x, b: cr.tensor(b), lambda a, b: np.asarray(_np(b))),
    ("tensor(requires_grad)", lambda x, b: cr.tensor(b, requires_grad=True), None),
    ("zeros", lambda x, b: cr.zeros(b), lambda a, b: np.zeros(b)),
    ("full", lambda x, b: cr.full((2,), b), None),
    ("iadd", lambda x, b: x.__iadd__(b), None),
    ("copy_", lambda x, b: x.copy_(b), None),
    ("backward(gradient)", lambda x, b: (x.requires_grad_() * 2).backward(gradient=b), None),
    ("grad", lambda x, b: cr.grad(lambda t: (t * t).sum())(b), None),
    ("gradcheck", lambda x, b: cr.gradcheck(lambda t: t.sin().sum(), [b]), None),
    # nn / optim / io, built lazily so a missing optional part fails here, not at import
    ("Linear(b)", lambda x, b: _nn().Linear(3, 2)(b), None),
    ("Linear(size)", lambda x, b: _nn().Linear(b, 2), None),
    ("Conv2d(b)", lambda x, b: _nn().Conv2d(1, 2, 2)(b), None),
    ("cross_entropy", lambda x, b: _F().cross_entropy(cr.ones(2, 3), b), None),
    ("cross_entropy(input)", lambda x, b: _F().cross_entropy(b, cr.tensor([0, 1])), None),
    ("mse_loss", lambda x, b: _F().mse_loss(x, b), None),
    ("binary_cross_entropy", lambda x, b: _F().binary_cross_entropy(cr.full((3,), 0.5), b),
     None),
    ("softmax(F)", lambda x, b: _F().softmax(b, -1), None),
    ("SGD(params)", lambda x, b: cr.optim.SGD(b, lr=0.1), None),
    ("Adam(lr)", lambda x, b: cr.optim.Adam([x.requires_grad_()], lr=b), None),
    ("load_state_dict", lambda x, b: _nn().Linear(3, 2).load_state_dict(b), None),
    ("load(path)", lambda x, b: cr.load(b), None),
]


def _nn():
    import chainrule.nn as nn
    return nn


def _F():
    import chainrule.nn.functional as F
    return F


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def _call_with_timeout(fn, seconds=5):
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    if got.dtype.kind == "f" and want.dtype.kind == "f":
        # chainrule keeps float32 where NumPy may widen (PyTorch's promotion): compare in it
        with np.errstate(over="ignore"):
            want = want.astype(got.dtype)
    if got.dtype.kind in "fc" or want.dtype.kind in "fc":
        return np.allclose(got.astype(np.complex128), want.astype(np.complex128), rtol=1e-5,
                           atol=1e-6, equal_nan=True)
    return np.array_equal(got, want)


def _result_array(out):
    if isinstance(out, cr.Tensor):
        return out._data
    return out


@settings(max_examples=400 * SCALE)
@given(st.sampled_from(API), BAD, st.sampled_from([(2, 3), (3,), ()]))
def test_bad_inputs_raise_only_chainrule_errors(entry, bad, shape):
    name, call, reference = entry
    x = cr.tensor(np.arange(np.prod(shape, dtype=int), dtype=np.float32).reshape(shape) + 0.5)
    x_before = x._data.copy()
    try:
        out = _call_with_timeout(lambda: call(x, bad))
    except ChainruleError:
        return
    except _Hang:
        pytest.fail(f"{name}({bad!r}) hung")
    except Exception as exc:  # anything else is a bare error escaping the public API
        pytest.fail(f"{name}({bad!r}) on shape {shape} raised a bare "
                    f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    if reference is None or not isinstance(out, cr.Tensor):
        return
    try:
        want = reference(x_before, bad)
    except Exception:
        want = None
    assert want is not None, f"{name}({bad!r}): NumPy refuses it but chainrule answered {out!r}"
    assert _same(out._data, want), f"{name}({bad!r}): chainrule {out._data!r} != NumPy {want!r}"
