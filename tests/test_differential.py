"""A differential fuzzer against PyTorch (hypothesis; derandomized in CI by tests/conftest.py).

Every primitive and composite is run by chainrule and by PyTorch on the same inputs, and the
two must agree on: whether an error is raised (chainrule's own error classes, never a bare
Python or NumPy one), the value (shape, dtype, nan and inf positions, numbers within the
dtype's tolerance) and every input's gradient of sum(y · v) for a fixed positive v.

1. Every sample of tests/primitive_specs.py (each primitive's, and `all_composites()`) with its
   values replaced by drawn ones: ±inf, nan, ±0, huge and tiny (subnormal) numbers among
   ordinary ones, float32 or float64, laid out contiguous, transposed, with a negative stride
   or strided (non-contiguous inputs reach chainrule as they are; PyTorch gets a copy).
2. Families over drawn shapes and operands: unary elementwise ops; binary ops and comparisons
   between tensors of broadcastable shapes (size-0 dimensions included), integer and bool
   tensors and Python scalars on either side; reductions over None, one or several axes,
   negative ones, keepdims, on 0-d and empty tensors; matmul (empty and batch dimensions);
   shape movers (reshape, transpose, expand, concatenate and stack with empty pieces, basic
   indexing with negative steps, integer-array indexing, split).

CI runs a fixed, small number of examples per test (under a minute in all); a deeper run:
CHAINRULE_FUZZ_EXAMPLES=500 python -m pytest tests/test_differential.py (per test, or per
sample for part 1). Where chainrule differs from PyTorch on purpose, the case is listed in
KNOWN with the reason and a witness input (tested: each still differs on its witness, so
the list never outlives a fix).
"""
import os
import warnings

import numpy as np
import pytest
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.errors import ChainruleError

from primitive_specs import all_composites, all_samples, sample_id

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

DEEP = int(os.environ.get("CHAINRULE_FUZZ_EXAMPLES", "0"))
# CHAINRULE_FUZZ_TRIAGE=1: report failures unshrunk (fast, for surveying many findings)
PHASES = ([Phase.explicit, Phase.reuse, Phase.generate]
          if os.environ.get("CHAINRULE_FUZZ_TRIAGE") else list(Phase))


def examples(ci):
    return DEEP or ci


inf, nan = float("inf"), float("nan")
FLOATS = (np.float32, np.float64)
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
                np.dtype(np.int64): torch.int64, np.dtype(np.int32): torch.int32,
                np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool}
TORCH_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)


# ---------------------------------------------------------------- drawing inputs

def _specials(dtype):
    fi = np.finfo(dtype)
    big, tiny = float(fi.max) / 8, float(fi.smallest_subnormal)
    return [0.0, -0.0, 1.0, -1.0, inf, -inf, nan, big, -big, float(fi.tiny), tiny, -tiny,
            1e4, -1e4, 30.0, -30.0]


def _elements(dtype, edge):
    plain = st.floats(-3.0, 3.0, width=32)
    if not edge:
        return plain
    return st.one_of(plain, plain, st.sampled_from(_specials(dtype)))


@st.composite
def float_arrays(draw, shape, dtype, edge=True):
    """Values of `shape` (edge: specials among ordinary values), in one of four layouts."""
    a = draw(hnp.arrays(dtype, shape, elements=_elements(dtype, edge)))
    return _layout(a, draw(st.sampled_from(["contiguous", "transposed", "reversed",
                                            "strided"])))


def _layout(a, layout):
    """The same values in a non-contiguous layout (a view), or `a` itself."""
    if a.ndim == 0 or a.size == 0 or layout == "contiguous":
        return a
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T if a.ndim >= 2 else a
    if layout == "reversed":
        return np.flip(np.flip(a, 0).copy(), 0)          # a negative stride on axis 0
    big = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    big[::2] = a
    return big[::2]


# ---------------------------------------------------------------- running both libraries

class Raised(Exception):
    pass


def _ours(fn, arrays, grads, weights):
    """(value array, [grad or None]) from chainrule, or Raised(error)."""
    ts = [cr.ops.as_tensor(a) if not isinstance(a, (int, float, bool)) else a for a in arrays]
    for t, g in zip(ts, grads):
        if g:
            t.requires_grad_()
    try:
        y = fn(*ts)
        if y.requires_grad:
            v = cr.ops.as_tensor(weights(y.shape, y.dtype))
            (y * v).sum().backward()
    except ChainruleError as exc:
        return Raised(exc)
    value = y.numpy()
    return value, [t.grad.numpy() if g and t.grad is not None else None
                   for t, g in zip(ts, grads)]


def _theirs(fn, arrays, grads, weights):
    ts = []
    for a, g in zip(arrays, grads):
        if isinstance(a, (int, float, bool)):
            ts.append(a)
        else:
            ts.append(torch.tensor(np.array(a, order="C"), requires_grad=bool(g)))  # a copy
    try:
        y = fn(torch, *ts)
        if y.requires_grad:
            dtype = np.dtype(str(y.dtype).replace("torch.", ""))
            (y * torch.tensor(weights(tuple(y.shape), dtype))).sum().backward()
    except TORCH_ERRORS as exc:
        return Raised(exc)
    return y.detach().numpy(), [t.grad.numpy() if g and t.grad is not None else None
                                for t, g in zip(ts, grads)]


def _weights(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    return np.linspace(0.5, 1.5, max(n, 1))[:n].reshape(shape).astype(dtype)


def _tolerance(dtype):
    return (2e-4, 1e-6) if np.dtype(dtype) == np.float32 else (1e-8, 1e-12)


def _close(a, b, dtype, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs PyTorch's {b.shape}"
    if a.dtype.kind in "biu" or b.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b, err_msg=what)
        return
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(a64), np.isnan(b64), err_msg=f"{what}: nan positions")
    both = ~np.isnan(a64)
    np.testing.assert_array_equal(np.isinf(a64) & both, np.isinf(b64) & both,
                                  err_msg=f"{what}: inf positions")
    np.testing.assert_array_equal(a64[np.isinf(a64)], b64[np.isinf(a64)],
                                  err_msg=f"{what}: inf signs")
    finite = np.isfinite(a64)
    rtol, atol = _tolerance(np.float32 if np.float32 in (a.dtype, b.dtype) else dtype)
    diff = np.abs(a64[finite] - b64[finite])
    bound = atol + rtol * np.maximum(np.abs(a64[finite]), np.abs(b64[finite]))
    bad = diff > bound
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {bad.size} values differ, e.g. "
                           f"{a64[finite][bad][:4]} vs PyTorch's {b64[finite][bad][:4]}")


def compare(case, fn, tfn, arrays, grads, dtype):
    """Run both and assert they agree (or that `case` is a KNOWN difference)."""
    note(f"case {case}: dtype {np.dtype(dtype).name}, inputs "
         + "; ".join(repr(a) if isinstance(a, (int, float, bool)) else
                     f"{a.dtype}{a.shape} {np.array2string(a, threshold=20)}" for a in arrays))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _ours(fn, arrays, grads, _weights)
        theirs = _theirs(tfn, arrays, grads, _weights)
    why = known(case, arrays, ours, theirs)
    try:
        _agree(ours, theirs, dtype)
    except AssertionError:
        if why is None:
            raise
        return "known"
    return "agree"


def _agree(ours, theirs, dtype):
    if isinstance(ours, Raised) or isinstance(theirs, Raised):
        assert isinstance(ours, Raised) == isinstance(theirs, Raised), (
            f"chainrule {'raised ' + repr(ours) if isinstance(ours, Raised) else 'computed'}, "
            f"PyTorch {'raised ' + repr(theirs) if isinstance(theirs, Raised) else 'computed'}")
        return
    (value, grads), (tvalue, tgrads) = ours, theirs
    assert value.dtype == tvalue.dtype, f"dtype {value.dtype} vs PyTorch's {tvalue.dtype}"
    _close(value, tvalue, dtype, "value")
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        if g is None or tg is None:     # no gradient on one side: zeros on the other
            other = tg if g is None else g
            assert other is None or not np.any(other), f"gradient {i}: None vs nonzero"
            continue
        assert g.dtype == tg.dtype, f"gradient {i}: dtype {g.dtype} vs PyTorch's {tg.dtype}"
        _close(g, tg, dtype, f"gradient {i}")


# ---------------------------------------------------------------- known differences

def _has(arrays, test):
    return any(not isinstance(a, (int, float, bool)) and a.dtype.kind == "f" and a.size and
               test(a).any() for a in arrays)


def _zero_d_promotion(arrays, ours, theirs):
    """Two tensors of one kind (float, int) and different dtypes, one 0-d, the other not."""
    ts = [a for a in arrays if not isinstance(a, (int, float, bool))]
    if len(ts) != 2 or ts[0].dtype == ts[1].dtype:
        return False
    kinds = {a.dtype.kind if a.dtype.kind != "u" else "i" for a in ts}
    return len(kinds) == 1 and sorted(a.ndim == 0 for a in ts) == [False, True]


def _shape_error(arrays, ours, theirs):
    return isinstance(ours, Raised) and type(ours.args[0]).__name__ == "ShapeError" \
        and not isinstance(theirs, Raised)


def _negative_zero_or_inf(arrays, ours, theirs):
    return _has(arrays, lambda a: ((a == 0) & np.signbit(a)) | (a == -np.inf))


def _bool_operand(arrays, ours, theirs):
    return any(isinstance(a, bool) or np.asarray(a).dtype == bool for a in arrays)


def _overflowing_products(arrays, ours, theirs):
    """Finite values whose products overflow: a sum of them is inf or nan by the order of
    additions and by fused multiply-adds, which differ between BLAS and PyTorch."""
    return _has(arrays, lambda a: np.isfinite(a) & (np.abs(a) > np.sqrt(np.finfo(a.dtype).max)))


def _squares_overflow(arrays, ours, theirs):
    return _has(arrays, lambda a: np.isfinite(a) & (np.abs(a) > np.sqrt(np.finfo(a.dtype).max)))


def _subnormal(arrays, ours, theirs):
    return _has(arrays, lambda a: (a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny))


def _not_finite(arrays, ours, theirs):
    return _has(arrays, lambda a: ~np.isfinite(a))


def _infinite(arrays, ours, theirs):
    return _has(arrays, np.isinf)


def _plus_inf_float32(arrays, ours, theirs):
    return _has(arrays, lambda a: (a.dtype == np.float32) & (a == np.inf))


def _probability_at_0_or_1(arrays, ours, theirs):
    return _has(arrays[:1], lambda a: (a == 0) | (a == 1))


def _beyond_one_ulp(arrays, ours, theirs):
    """Values so large that adding ln n to them rounds away."""
    return _has(arrays, lambda a: np.isfinite(a) & (np.abs(a) > 1 / np.finfo(a.dtype).eps))


def _large(arrays, ours, theirs):
    return _has(arrays, lambda a: np.isfinite(a) & (np.abs(a) * np.finfo(a.dtype).eps > 1e-4))


def _torch_backward_dtype_bug(arrays, ours, theirs):
    return isinstance(theirs, Raised) and "Found dtype" in str(theirs.args[0])


def _square_underflows(arrays, ours, theirs):
    return _has(arrays, lambda a: (a != 0) & (np.abs(a) < np.sqrt(np.finfo(a.dtype).tiny)))


def _sample(name, label):
    from primitive_specs import COMPOSITES, SPECS
    samples = COMPOSITES[name] if name in COMPOSITES else SPECS[name].samples
    (sample,) = [s for s in samples if s.label == label]
    return sample.fn, sample.torch_fn


def _reduce_fns(name, axis=None, keep=False):
    fn, tfn, _ = REDUCTIONS[name]
    return (lambda t: fn(t, axis, keep)), (lambda T, t: tfn(T, t, axis, keep))


F32, F64 = np.float32, np.float64
# (case prefix, reason, predicate(arrays, ours, theirs) -> True where it applies, witness):
# a witness is (functions, arrays, grads, dtype) on which the difference shows (tested, so
# the list stays true); None for an entry whose reason is "as ..." another's.
KNOWN = [
    ("binary ", "a 0-d tensor promotes a tensor with dimensions of the same kind (NumPy's "
     "rule; docs/conventions.md, Dtypes): float64 0-d · float32 vector is float64 here, "
     "float32 in PyTorch", _zero_d_promotion,
     (lambda: BINARY["mul"], [np.array([1.0, 2.0], F32), np.array(3.0)], [True, True], F32)),
    ("reduce mean", "the mean over no values is a ShapeError here (a clear error), nan in "
     "PyTorch", _shape_error,
     (lambda: _reduce_fns("mean"), [np.zeros(0, F32)], [True], F32)),
    ("reduce var", "a variance with no degrees of freedom (n - correction <= 0) is a "
     "ShapeError here, nan in PyTorch", _shape_error,
     (lambda: _reduce_fns("var"), [np.array([1.0], F32)], [True], F32)),
    ("reduce std", "as var", _shape_error, None),
    ("sample composite var", "as var", _shape_error, None),
    ("sample composite std", "as var", _shape_error, None),
    ("sample composite mean", "as mean", _shape_error, None),
    ("unary pow-0.5", "x ** 0.5 at x = -0.0 or -inf: the gradient 0.5·x^-0.5 is +inf and 0 "
     "here (IEEE pow); PyTorch computes 1/(2√x) and gets -inf and nan",
     _negative_zero_or_inf,
     (lambda: UNARY["pow-0.5"], [np.array([-0.0, -np.inf])], [True], F64)),
    ("sample pow", "as unary pow-0.5", _negative_zero_or_inf, None),
    ("binary pow", "a bool operand: NumPy's int8 result here; PyTorch keeps bool for a bool "
     "base and scalar exponent, and refuses a bool exponent tensor", _bool_operand,
     (lambda: BINARY["pow"], [np.array([True, False]), True], [False, False], F32)),
    (("binary div", "sample div"), "the denominator's gradient where b² underflows (|b| < 1e-19 in float32): "
     "-(a/b)/b here, finite where a = 0; PyTorch's -a/b² is nan", _square_underflows,
     (lambda: BINARY["div"], [0.0, np.array(1.1754944e-38, F32)], [False, True], F32)),
    ("matmul", "products that overflow: inf or nan depends on the order of additions and on "
     "fused multiply-adds (BLAS vs PyTorch)", _overflowing_products,
     (lambda: (lambda a, w: a @ w.T, lambda t, a, w: a @ w.T),
      [np.array([[np.inf, -2.2e307, -30.0], [1.9, np.inf, 1.0]]),
       np.array([[2.2e307, 2.2e-308, 2.2e307], [2.2e307, -0.07, 2.2e307],
                 [np.nan, -2.6, 2.2e307], [-30.0, -0.12, -2.9]])], [True, True], F64)),
    ("sample matmul", "as matmul", _overflowing_products, None),
    ("sample linear", "as matmul", _overflowing_products, None),
    ("sample conv2d_gemm", "as matmul", _overflowing_products, None),
    ("sample im2col", "as matmul", _overflowing_products, None),
    ("sample col2im", "as matmul", _overflowing_products, None),
    (("reduce std", "reduce var", "sample composite var", "sample composite std"),
     "values whose squares overflow (|x| > 1.8e19 in float32, 1.3e154 in float64): the "
     "composite squares deviations from a rounded mean and gets inf; PyTorch's Welford "
     "update (in float64 for float32 on the CPU) stays finite", _squares_overflow,
     (lambda: _reduce_fns("std"), [np.array([4.25e37, 0, 0, 0], F32)], [True], F32)),
    (("reduce std", "sample composite std", "reduce norm"), "subnormal values (0 < |x| < "
     "1.2e-38 in float32): a variance that underflows to 0 gives the gradient 0 here (as for "
     "equal values, in both), PyTorch's is nan; the norm of one subnormal is |x| with "
     "gradient ±1 here, 0 in PyTorch", _subnormal,
     (lambda: _reduce_fns("std"), [np.array([-1e-45, -1e-45, -1e-45, -0.0, -0.0], F32)],
      [True], F32)),
    (("reduce sum", "sample sum", "reduce mean", "sample composite mean", "reduce var",
      "sample composite var", "reduce std", "sample composite std", "reduce norm",
      "sample softmax_cross_entropy"),
     "values so large that adding the small ones rounds away: a sum depends on the order of "
     "additions (NumPy's pairwise, PyTorch's blocked)", _beyond_one_ulp,
     (lambda: _sample("sum", "x(2, 3, 2) axis=None keepdims=True"),
      [np.array([[[2.2e307, 3.0], [-2.2e307, 1.0], [1.0, 2.2e307]],
                 [[1.0, -2.2e307], [0.5, 1.0], [-1.0, 2.0]]])], [True], F64)),
    ("reduce var", "an infinite input (the variance is nan in both): the gradient is nan "
     "everywhere here, the composite's path through the mean carrying inf - inf; PyTorch's "
     "closed form 2(x - mean)/(n - c) keeps the other entries ±inf", _infinite,
     (lambda: _reduce_fns("var"), [np.array([0.0, np.inf, -2.9, 0.0], F32)], [True], F32)),
    ("reduce std", "as var with an infinite input", _infinite, None),
    ("sample composite var", "as var with an infinite input", _infinite, None),
    ("sample composite std", "as var with an infinite input", _infinite, None),
    ("reduce norm", "the 2-norm of one value is |x| here, so its gradient at ±inf and nan is "
     "±1 and 0 (|x|'s); PyTorch's x/‖x‖ is nan", _not_finite,
     (lambda: _reduce_fns("norm"), [np.array(np.inf, F32)], [True], F32)),
    ("reduce logsumexp", "large values (|x|·eps > 1e-4: beyond 840 in float32): the gradient "
     "here is the softmax of the shifted x; PyTorch's exp(x - result) loses a unit in the "
     "last place of the result (and is 1 per entry once + ln n rounds away)", _large,
     (lambda: _reduce_fns("logsumexp"), [np.full((2, 3), 4.25e37, F32)], [True], F32)),
    ("sample composite logsumexp", "as reduce logsumexp", _large, None),
    ("sample binary_cross_entropy", "PyTorch's backward fails ('Found dtype Double but "
     "expected Float') for float32 probabilities with float64 targets; chainrule computes",
     _torch_backward_dtype_bug,
     (lambda: _sample("binary_cross_entropy", "none, hard targets"),
      [np.array([0.2, 0.4, 0.6, 0.8], F32)], [True], F32)),
    ("sample erf", "gelu at +inf in float32: PyTorch's float32 kernel gives nan (its float64 "
     "one gives inf, as chainrule does in both)", _plus_inf_float32,
     (lambda: _sample("erf", "gelu (exact, through erf) x(2, 3)"),
      [np.array([[np.inf, 1.0, 2.0], [0.0, -1.0, 3.0]], F32)], [True], F32)),
    ("sample binary_cross_entropy", "the target's gradient at p = 0 or 1 is ±100 here (the "
     "derivative of the forward, whose logs are clamped at -100 as in PyTorch); PyTorch's is "
     "±inf", _probability_at_0_or_1,
     (lambda: _sample("binary_cross_entropy", "mean"),
      [np.array([[0.0, 0.5, 0.5], [0.5, 0.5, 1.0]]), np.full((2, 3), 0.5)], [True, True],
      F64)),
]


def known(case, arrays, ours, theirs):
    for prefix, why, applies, _ in KNOWN:
        if case.startswith(prefix) and applies(arrays, ours, theirs):   # (prefix: str or tuple)
            return why
    return None


@pytest.mark.parametrize("entry", [k for k in KNOWN if k[3] is not None],
                         ids=[f"{k[0] if isinstance(k[0], str) else k[0][0]}: {k[1][:40]}"
                              for k in KNOWN if k[3] is not None])
def test_each_known_difference_is_real(entry):
    """Each listed difference shows on its witness, so the list never outlives a fix."""
    prefix, why, applies, (fns, arrays, grads, dtype) = entry
    fn, tfn = fns()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _ours(fn, arrays, grads, _weights), _theirs(tfn, arrays, grads, _weights)
    with pytest.raises(AssertionError):
        _agree(ours, theirs, dtype)
    assert applies(arrays, ours, theirs)
    case = prefix if isinstance(prefix, str) else prefix[0]
    assert known(case, arrays, ours, theirs) is not None


def test_known_reasons_are_witnessed_or_refer_to_one():
    for prefix, why, _, witness in KNOWN:
        assert witness is not None or why.startswith("as "), prefix


# ---------------------------------------------------------------- 1. every sample, drawn values

ITEMS = all_samples() + [(f"composite {name}", s) for name, s in all_composites()]


@pytest.mark.parametrize("item", ITEMS, ids=[sample_id(i) for i in ITEMS])
@settings(max_examples=examples(6), phases=PHASES)
@given(data=st.data())
def test_every_sample_with_drawn_values_matches_pytorch(item, data):
    name, sample = item
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    arrays = [data.draw(float_arrays(np.shape(a), dtype), label=f"arg {i}")
              for i, a in enumerate(sample.args)]
    compare(f"sample {name}", sample.fn, sample.torch_fn, arrays, [True] * len(arrays), dtype)


# ---------------------------------------------------------------- 2. families

UNARY = {
    "neg": (lambda x: -x, lambda t, x: -x), "exp": (cr.exp, lambda t, x: x.exp()),
    "log": (cr.log, lambda t, x: x.log()), "sqrt": (cr.sqrt, lambda t, x: x.sqrt()),
    "sin": (cr.sin, lambda t, x: x.sin()), "cos": (cr.cos, lambda t, x: x.cos()),
    "tanh": (cr.tanh, lambda t, x: x.tanh()), "abs": (cr.abs, lambda t, x: x.abs()),
    "sigmoid": (cr.sigmoid, lambda t, x: x.sigmoid()), "relu": (cr.relu, lambda t, x: x.relu()),
    "clip": (lambda x: x.clip(-0.5, 0.8), lambda t, x: x.clamp(-0.5, 0.8)),
    "square": (lambda x: x ** 2, lambda t, x: x ** 2),
    "pow-0.5": (lambda x: x ** 0.5, lambda t, x: x ** 0.5),
    "rpow": (lambda x: 2.0 ** x, lambda t, x: 2.0 ** x),
    "cast": (lambda x: x.double() * 1.0, lambda t, x: x.double() * 1.0),
}
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


@pytest.mark.parametrize("name", UNARY)
@settings(max_examples=examples(20), phases=PHASES)
@given(data=st.data())
def test_unary_ops_match_pytorch(name, data):
    fn, tfn = UNARY[name]
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x = data.draw(float_arrays(data.draw(SHAPES, label="shape"), dtype), label="x")
    compare(f"unary {name}", fn, tfn, [x], [True], dtype)


BINARY = {
    "add": (lambda a, b: a + b, lambda t, a, b: a + b),
    "sub": (lambda a, b: a - b, lambda t, a, b: a - b),
    "mul": (lambda a, b: a * b, lambda t, a, b: a * b),
    "div": (lambda a, b: a / b, lambda t, a, b: a / b),
    "pow": (lambda a, b: a ** b, lambda t, a, b: a ** b),
    "maximum": (lambda a, b: cr.maximum(a, b), lambda t, a, b: t.maximum(*_tensors(t, a, b))),
    "minimum": (lambda a, b: cr.minimum(a, b), lambda t, a, b: t.minimum(*_tensors(t, a, b))),
    "where": (lambda a, b: cr.where(_cond(a, b), a, b),
              lambda t, a, b: t.where(t.tensor(_cond(a, b)), *_tensors(t, a, b))),
    "lt": (lambda a, b: a < b, lambda t, a, b: a < b),
    "ge": (lambda a, b: a >= b, lambda t, a, b: a >= b),
    "eq": (lambda a, b: a == b, lambda t, a, b: a == b),
}


def _tensors(t, a, b):
    """PyTorch's maximum/minimum/where take tensors: a Python scalar becomes a 0-d tensor of
    the dtype PyTorch's promotion gives the pair (as it would for `a + scalar`)."""
    if not isinstance(a, t.Tensor):
        a = t.tensor(a, dtype=t.result_type(b, a))
    if not isinstance(b, t.Tensor):
        b = t.tensor(b, dtype=t.result_type(a, b))
    return a, b


def _cond(a, b):
    shape = np.broadcast_shapes(np.shape(_data(a)), np.shape(_data(b)))
    n = int(np.prod(shape, dtype=np.int64))
    return (np.arange(n) % 3 != 1).reshape(shape)


def _data(x):
    if isinstance(x, cr.Tensor):
        return x.numpy()
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x


@st.composite
def operand(draw, shape, float_dtype):
    """A float tensor (differentiable), an integer or bool tensor, or a Python scalar."""
    kind = draw(st.sampled_from(["float", "float", "float", "int64", "int32", "uint8", "bool",
                                 "py-int", "py-float", "py-bool", "other-float"]))
    if kind == "float":
        return draw(float_arrays(shape, float_dtype)), True
    if kind == "other-float":       # the other float dtype: promotion between float tensors
        other = np.float64 if float_dtype == np.float32 else np.float32
        return draw(float_arrays(shape, other, edge=False)), True
    if kind in ("int64", "int32", "uint8"):
        lo = 0 if kind == "uint8" else -5
        return draw(hnp.arrays(np.dtype(kind), shape, elements=st.integers(lo, 5))), False
    if kind == "bool":
        return draw(hnp.arrays(np.bool_, shape)), False
    if kind == "py-int":
        return draw(st.integers(-3, 3)), False
    if kind == "py-bool":
        return draw(st.booleans()), False
    return draw(st.sampled_from([0.5, -2.0, 0.0, 3.0, inf, nan])), False


@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=examples(40), phases=PHASES)
@given(data=st.data())
def test_binary_ops_and_comparisons_match_pytorch(name, data):
    fn, tfn = BINARY[name]
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                         min_side=0, max_side=3), label="shapes")
    (a, ga), (b, gb) = (data.draw(operand(s, dtype), label=f"operand {i}")
                        for i, s in enumerate(shapes.input_shapes))
    if all(isinstance(v, (int, float, bool)) for v in (a, b)):
        return                               # two Python scalars: no tensor at all
    compare(f"binary {name}", fn, tfn, [a, b], [ga, gb], dtype)


# reductions: (chainrule fn(x, axis, keepdims), torch fn(t, x, axis, keepdims), multi-axis ok)
def _full(t, x, r, keep):
    return r.reshape((1,) * x.ndim) if keep else r


REDUCTIONS = {
    "sum": (lambda x, a, k: cr.sum(x, axis=a, keepdims=k),
            lambda t, x, a, k: _full(t, x, x.sum(), k) if a is None else x.sum(a, keepdim=k),
            True),
    "max": (lambda x, a, k: cr.max(x, axis=a, keepdims=k),
            lambda t, x, a, k: _full(t, x, x.amax(), k) if a is None else x.amax(a, keepdim=k),
            True),
    "min": (lambda x, a, k: cr.min(x, axis=a, keepdims=k),
            lambda t, x, a, k: _full(t, x, x.amin(), k) if a is None else x.amin(a, keepdim=k),
            True),
    "mean": (lambda x, a, k: cr.mean(x, axis=a, keepdims=k),
             lambda t, x, a, k: _full(t, x, x.mean(), k) if a is None else x.mean(a, keepdim=k),
             True),
    "var": (lambda x, a, k: cr.var(x, axis=a, keepdims=k, correction=1),
            lambda t, x, a, k: _full(t, x, x.var(), k) if a is None else x.var(a, keepdim=k),
            True),
    "var0": (lambda x, a, k: cr.var(x, axis=a, keepdims=k, correction=0),
             lambda t, x, a, k: _full(t, x, x.var(correction=0), k) if a is None else
             x.var(a, keepdim=k, correction=0), True),
    "std": (lambda x, a, k: cr.std(x, axis=a, keepdims=k, correction=1),
            lambda t, x, a, k: _full(t, x, x.std(), k) if a is None else x.std(a, keepdim=k),
            True),
    "norm": (lambda x, a, k: cr.norm(x, 2, axis=a, keepdims=k),
             lambda t, x, a, k: t.linalg.vector_norm(x, 2, dim=a, keepdim=k), True),
    "logsumexp": (lambda x, a, k: cr.logsumexp(x, axis=a, keepdims=k),
                  lambda t, x, a, k: t.logsumexp(x, tuple(range(x.ndim)) if a is None else a,
                                                 keepdim=k), True),
    "softmax": (lambda x, a, k: cr.softmax(x, axis=a), lambda t, x, a, k: x.softmax(a), False),
    "log_softmax": (lambda x, a, k: cr.log_softmax(x, axis=a),
                    lambda t, x, a, k: x.log_softmax(a), False),
}


@st.composite
def axes(draw, ndim, multi):
    """None, one axis (maybe negative), or several distinct ones (maybe negative)."""
    if ndim == 0:
        return draw(st.sampled_from([None, 0, -1] if multi else [0, -1]))
    one = st.integers(-ndim, ndim - 1)
    if not multi:
        return draw(one)
    kind = draw(st.sampled_from(["none", "one", "several"]))
    if kind == "none":
        return None
    if kind == "one":
        return draw(one)
    picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in picked)


@pytest.mark.parametrize("name", REDUCTIONS)
@settings(max_examples=examples(30), phases=PHASES)
@given(data=st.data())
def test_reductions_over_drawn_axes_match_pytorch(name, data):
    fn, tfn, multi = REDUCTIONS[name]
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x = data.draw(float_arrays(data.draw(SHAPES, label="shape"), dtype), label="x")
    axis = data.draw(axes(x.ndim, multi), label="axis")
    keep = data.draw(st.booleans(), label="keepdims")
    compare(f"reduce {name}", lambda t: fn(t, axis, keep), lambda T, t: tfn(T, t, axis, keep),
            [x], [True], dtype)


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                   min_side=0, max_side=2)).input_shapes
    kind = draw(st.sampled_from(["mm", "mm", "vec-mat", "mat-vec", "dot"]))
    if kind == "dot":
        return (k,), (k,)
    if kind == "vec-mat":
        return (k,), batch[1] + (k, m)
    if kind == "mat-vec":
        return batch[0] + (n, k), (k,)
    return batch[0] + (n, k), batch[1] + (k, m)


@settings(max_examples=examples(60), phases=PHASES)
@given(data=st.data())
def test_matmul_over_drawn_shapes_matches_pytorch(data):
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    sa, sb = data.draw(matmul_shapes(), label="shapes")
    a = data.draw(float_arrays(sa, dtype, edge=data.draw(st.booleans())), label="a")
    b = data.draw(float_arrays(sb, dtype, edge=False), label="b")
    compare("matmul", lambda x, y: x @ y, lambda t, x, y: x @ y, [a, b], [True, True], dtype)


# ---------------------------------------------------------------- shape movers

def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0] or [1]


@st.composite
def reshapes(draw, shape):
    size = int(np.prod(shape, dtype=np.int64))
    if size == 0:
        return draw(st.sampled_from([(0,), (-1,), (0, 1), tuple(reversed(shape)) or (0,)]))
    d = draw(st.sampled_from(_divisors(size)))
    return draw(st.sampled_from([(size,), (-1,), (1, size), (d, size // d), (size // d, -1),
                                 (d, 1, size // d), ()])) if size == 1 or True else None


def _basic_index_torch(t, x, index):
    """x[index] for ints and slices (negative steps included) without NumPy's view rules."""
    d = 0
    for part in index:
        if isinstance(part, int):
            x = x.select(d, part)
        else:
            picked = np.arange(x.shape[d])[part].copy()     # PyTorch wants positive strides
            x = x.index_select(d, t.as_tensor(picked, dtype=t.int64))
            d += 1
    return x


@st.composite
def basic_indices(draw, shape):
    index = []
    for n in shape[:draw(st.integers(0, len(shape)))]:
        if n and draw(st.booleans()):
            index.append(draw(st.integers(-n, n - 1)))
        else:
            start = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            stop = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            index.append(slice(start, stop, draw(st.sampled_from([None, 1, 2, -1, -2]))))
    return tuple(index)


@st.composite
def shape_cases(draw, dtype):
    """(case name, chainrule fn, torch fn, arrays)."""
    kind = draw(st.sampled_from(["reshape", "transpose", "expand", "cat", "stack", "index",
                                 "index-array", "mask", "split", "squeeze"]))
    shape = draw(SHAPES)
    x = draw(float_arrays(shape, dtype))
    ndim = len(shape)
    if kind == "reshape":
        new = draw(reshapes(shape))
        return kind, (lambda a: a.reshape(new)), (lambda t, a: a.reshape(new)), [x]
    if kind == "transpose":
        perm = tuple(p - ndim if draw(st.booleans()) else p for p in draw(st.permutations(
            range(ndim))))
        return kind, (lambda a: a.permute(*perm)), (lambda t, a: a.permute(perm)), [x]
    if kind == "expand":
        lead = tuple(draw(st.lists(st.integers(0, 2), max_size=2)))
        target = lead + tuple(draw(st.sampled_from([0, 1, 3])) if n == 1 else
                              draw(st.sampled_from([n, -1])) for n in shape)
        return kind, (lambda a: a.expand(*target)), (lambda t, a: a.expand(target)), [x]
    if kind in ("cat", "stack"):
        if ndim == 0 and kind == "cat":
            shape, x, ndim = (1,), x.reshape(1), 1
        k = draw(st.integers(1, 4))
        axis = draw(st.integers(-ndim - (kind == "stack"), ndim - 1 + (kind == "stack")))
        pieces = [x]
        for _ in range(k - 1):
            s = list(shape)
            if kind == "cat":
                s[axis] = draw(st.integers(0, 3))
            pieces.append(draw(float_arrays(tuple(s), dtype)))
        if kind == "cat":
            return kind, (lambda *a: cr.cat(list(a), axis=axis)), \
                (lambda t, *a: t.cat(list(a), dim=axis)), pieces
        return kind, (lambda *a: cr.stack(list(a), axis=axis)), \
            (lambda t, *a: t.stack(list(a), dim=axis)), pieces
    if kind == "index":
        index = draw(basic_indices(shape))
        return kind, (lambda a: a[index]), (lambda t, a: _basic_index_torch(t, a, index)), [x]
    if kind == "index-array" and ndim and shape[0]:
        picks = np.array(draw(st.lists(st.integers(-shape[0], shape[0] - 1), max_size=5)),
                         dtype=np.int64)
        return kind, (lambda a: a[picks]), (lambda t, a: a[t.as_tensor(picks)]), [x]
    if kind == "mask" and ndim:
        mask = draw(hnp.arrays(np.bool_, shape[:1]))
        return kind, (lambda a: a[mask]), (lambda t, a: a[t.as_tensor(mask)]), [x]
    if kind == "split" and ndim and shape[-1]:
        size = draw(st.integers(1, shape[-1]))
        return kind, (lambda a: cr.stack([p.sum() * (i + 1.0) for i, p in enumerate(
            cr.split(a, size, axis=-1))])), (lambda t, a: t.stack([
                p.sum() * (i + 1.0) for i, p in enumerate(t.split(a, size, dim=-1))])), [x]
    if kind == "squeeze":
        return kind, (lambda a: cr.unsqueeze(cr.squeeze(a), 0)), \
            (lambda t, a: a.squeeze().unsqueeze(0)), [x]
    return "identity", (lambda a: a * 1.0), (lambda t, a: a * 1.0), [x]


@settings(max_examples=examples(150), phases=PHASES)
@given(data=st.data())
def test_shape_movers_and_indexing_match_pytorch(data):
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    name, fn, tfn, arrays = data.draw(shape_cases(dtype), label="case")
    compare(f"shape {name}", fn, tfn, arrays, [True] * len(arrays), dtype)
