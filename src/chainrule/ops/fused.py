"""Fused primitives: compositions of other primitives declared as one registry entry, because
measurement showed they pay (bench/NOTES.md has the numbers).

- `linear` (x @ Wᵀ + b) records one node instead of transpose, matmul, add and the broadcast
  sum of the bias; its VJPs hand BLAS contiguous operands and return contiguous gradients,
  gᵀx for the weight directly in (out, in) layout (no transposed view to copy later).
- `softmax_cross_entropy` (integer labels) and `softmax_cross_entropy_probs` (probability
  targets) replace the eight or so nodes of log_softmax + pick + mean by one, and their
  gradient is the seeds' closed form (softmax(x) - Y) / m, computed in one pass.

Like every primitive, each entry has its forward, its VJP rules written for arrays and Tensors
alike (so grad of grad works), and the formula `explain` prints; tests/test_fused.py gradchecks them
and compares them with PyTorch.
"""
from .. import backend
from ..tensor import Tensor
from .elementwise import EXP, LOG
from .linalg import MATMUL
from .reductions import SUM
from .registry import Primitive, apply, as_tensor, guard, value
from .shape import TRANSPOSE

np = backend.np


# ---------------------------------------------------------------- linear

def _linear_forward(x, w, b=None):
    out = np.matmul(x, w.T)            # a transposed view: BLAS reads it without a copy
    if b is not None:
        if b.dtype == out.dtype:
            out += b                    # out is fresh, so adding in place is safe
        else:
            out = out + b
    return out


def _flat(t, n):
    """`t` (a Tensor or an array) as a matrix of rows of length n (a no-op for the usual 2-D
    batch)."""
    return t if t.ndim == 2 else t.reshape(-1, n)


def _linear_grad_x(g, y, x, w, b=None):
    return MATMUL(g, w)


def _linear_grad_w(g, y, x, w, b=None):
    return MATMUL(TRANSPOSE(_flat(g, w.shape[0]), axes=(1, 0)), _flat(x, w.shape[1]))


def _linear_grad_b(g, y, x, w, b=None):
    return g if g.ndim == 1 else SUM(_flat(g, w.shape[0]), axes=(0,), keepdims=False)


# The first-order kernels: the rules above with the primitives' forwards called directly (no
# dispatch per call, `.T` for the 2-D transpose), the same arrays bit for bit; the backward of
# every linear layer runs them (eager, and each replay of cr.compile). bench/NOTES.md §"cr.compile".
def _linear_kernel_x(g, y, x, w, b=None):
    return MATMUL.forward(g, w)


def _linear_kernel_w(g, y, x, w, b=None):
    return MATMUL.forward(_flat(g, w.shape[0]).T, _flat(x, w.shape[1]))


def _linear_kernel_b(g, y, x, w, b=None):
    return g if g.ndim == 1 else SUM.forward(_flat(g, w.shape[0]), axes=(0,), keepdims=False)


LINEAR = Primitive(
    "linear", _linear_forward, [_linear_grad_x, _linear_grad_w, _linear_grad_b],
    inputs=("x", "W", "b"), formula="x @ Wᵀ + b",
    derivs=["W (g @ W)", "x (gᵀ @ x, summed over the batch)", "1 (g summed over the batch)"],
    saves=("inputs",), reads=((1,), (0,), ()), layer_role="affine", precedence=1,
    grouping="associative",
    hint="x must end in in_features (x: (..., in)), W must be (out, in) and b (out,); check "
         "the layer sizes.",
    first_order_kernel=[_linear_kernel_x, _linear_kernel_w, _linear_kernel_b])


def linear(x, weight, bias=None):
    """x @ weightᵀ + bias as one primitive (weight (out, in), bias (out,) or None).

    >>> import chainrule as cr
    >>> linear(cr.ones(2, 3), cr.ones(4, 3), cr.zeros(4)).shape
    (2, 4)
    """
    inputs = (as_tensor(x), as_tensor(weight))
    if bias is not None:
        inputs += (as_tensor(bias),)
    return apply(LINEAR, inputs)


# ---------------------------------------------------------------- softmax cross-entropy

def _finite_max(x, axis):
    """The max of array `x` along `axis` (kept): the constant shift that keeps exp from
    overflowing. A max of -inf (a row of -inf only) is replaced by 0; a +inf or nan max is
    kept, so its row's softmax and loss are nan, as in PyTorch."""
    if type(x) is not np.ndarray:   # a device: no test read back to the host (a GPU sync)
        m = x.max(axis=axis, keepdims=True)
        return np.where(m == -np.inf, 0, m).astype(x.dtype, copy=False)
    m = np.maximum.reduce(x, axis=axis, keepdims=True)   # np.max without its wrapper
    if not np.isfinite(m).all():
        m = np.where(m == -np.inf, 0, m).astype(x.dtype, copy=False)
    return m


def _shifted(x, axis):
    """x minus its (finite) max along `axis`, so exp never overflows."""
    return x - _finite_max(x, axis)


def _reduce(per, reduction, count):
    if reduction == "none":
        return per
    total = np.add.reduce(per, dtype=per.dtype)
    return total * _scale(reduction, count, per.dtype) if reduction == "mean" else total


def _inverse(count):
    """1/count for a mean; NOTE: the mean over an empty batch is nan (PyTorch), not an error."""
    return 1.0 / count if count else float("nan")


def _scale(reduction, count, dtype):
    return dtype.type(_inverse(count)) if reduction == "mean" else dtype.type(1.0)


# The loss's forward keeps its exp(x - max) and row sums for the backward that usually
# follows, in its node's own `saved` param: a dict that softmax_cross_entropy makes per call,
# so it lives and dies with the node (the engine's version check guards the logits). Each
# forward run refills it, tagged with the logits and labels arrays it was computed from; the
# gradient takes it (emptying the dict) only for those very arrays, else recomputes. So a
# second forward with the same params (explain's rounding replay and verification run the
# recorded forward on other arrays) never hands its softmax to another node's backward. Only
# for small logits, where the recomputation's fixed cost matters (measured: bench/NOTES.md).
SAVE_MAX = 1 << 16


def _sce_forward(x, labels, reduction, saved=None):
    s = _shifted(x, 1)
    e = np.exp(s)
    total = np.add.reduce(e, axis=1, keepdims=True)
    if saved is not None:
        saved.clear()
    per = np.log(total[:, 0]) - s[_rows_of(x), labels]
    if saved is not None and e.size <= SAVE_MAX:
        saved.update(x=x, labels=labels, e=e, total=total)
    return _reduce(per, reduction, x.shape[0])


def _rows_of(x):
    """0..N-1 for the rows of x, in x's array module (to pair with the labels)."""
    return backend.xp_of(x).arange(x.shape[0])


def _sce_grad_forward(x, labels, reduction, saved=None):
    if saved and saved["x"] is x and saved["labels"] is labels:
        e = np.divide(saved["e"], saved["total"], out=saved["e"])
        saved.clear()        # used: the node holds no softmax once its backward has run
    else:
        e = np.exp(_shifted(x, 1))
        e /= np.add.reduce(e, axis=1, keepdims=True)
    e[_rows_of(x), labels] -= 1
    if reduction == "mean":
        e *= _scale(reduction, x.shape[0], e.dtype)
    return e


def _log_softmax(x, axis):
    """log softmax(x) along `axis` for the rules (arrays and Tensors): the shift by the row
    maximum is a constant, as in the forward."""
    s = x - _finite_max(value(x), axis)
    return s - LOG(SUM(EXP(s), axes=(axis,), keepdims=True))


def _softmax(x, axis):
    e = EXP(x - _finite_max(value(x), axis))
    return e / SUM(e, axes=(axis,), keepdims=True)


def _sce_grad_vjp(v, d, x, labels, reduction, saved=None):
    # d/dx of c·(softmax(x) - Y) applied to v: c·(p ⊙ v - p ⊙ Σⱼ pⱼvⱼ), p = softmax(x)
    p = _softmax(x, 1)
    pv = p * v
    out = pv - p * SUM(pv, axes=(1,), keepdims=True)
    return out * float(_scale(reduction, x.shape[0], x.dtype)) if reduction == "mean" else out


SOFTMAX_XENT_GRAD = Primitive(
    "softmax_cross_entropy_grad", _sce_grad_forward, [_sce_grad_vjp],
    formula="c·(softmax(x) - onehot(labels))",
    derivs=["c·(diag(p) - p pᵀ) per row, p = softmax(x)"], saves=("inputs",))


def _sce_rule(g, y, x, labels, reduction, saved=None):
    d = SOFTMAX_XENT_GRAD(x, labels=labels, reduction=reduction, saved=saved)
    return d * (g.reshape(g.shape + (1,)) if reduction == "none" else g)


SOFTMAX_XENT = Primitive(
    "softmax_cross_entropy", _sce_forward, [_sce_rule],
    formula="-ln softmax(x)[label], averaged over the batch",
    derivs=["(softmax(x) - onehot(label)) / m"], saves=("inputs",), loss="cross-entropy",
    hint="x must be (N, C) scores and labels (N,) integers in [0, C).")


def softmax_cross_entropy(x, labels, reduction="mean"):
    """Cross-entropy of scores `x` (N, C) against integer `labels` (N,), one primitive.

    >>> import chainrule as cr
    >>> round(softmax_cross_entropy(cr.tensor([[2.0, 0.0, 0.0]]), [0]).item(), 4)
    0.2395
    """
    given, x = labels, as_tensor(x)
    labels = labels._data if isinstance(labels, Tensor) else \
        labels if backend.is_array(labels) else np.asarray(labels)
    # host labels (a list, a NumPy array) are moved to the scores' device; F.cross_entropy
    # refuses a label *Tensor* on another device first, as PyTorch does.
    labels = backend.beside(labels, x._data)
    return guard(apply(SOFTMAX_XENT, (x,), labels=labels, reduction=reduction,
                       saved={}), labels=given)


def _probs_forward(x, t, axis, reduction):
    s = _shifted(x, axis)
    logp = s - np.log(np.exp(s).sum(axis=axis, keepdims=True))
    per = -(t * logp).sum(axis=axis)
    return _reduce(per, reduction, per.size)


def _upstream(g, reduction, axis, count):
    """The output gradient broadcast along the class axis and scaled for the mean."""
    if reduction == "none":
        return g.reshape(g.shape[:axis] + (1,) + g.shape[axis:])
    return g * _inverse(count) if reduction == "mean" else g


def _rows(x, axis):
    """The number of rows (positions but the class axis) of x: the mean's count."""
    return value(x).size // x.shape[axis] if x.shape[axis] else 0


def _probs_grad_x(g, y, x, t, axis, reduction):
    gb = _upstream(g, reduction, axis, _rows(x, axis))
    return (_softmax(x, axis) * SUM(t, axes=(axis,), keepdims=True) - t) * gb


def _probs_grad_t(g, y, x, t, axis, reduction):
    gb = _upstream(g, reduction, axis, _rows(x, axis))
    return -_log_softmax(x, axis) * gb


SOFTMAX_XENT_PROBS = Primitive(
    "softmax_cross_entropy_probs", _probs_forward, [_probs_grad_x, _probs_grad_t],
    inputs=("x", "t"), formula="-Σⱼ tⱼ ln softmax(x)ⱼ, averaged over the batch",
    derivs=["(softmax(x)·Σⱼtⱼ - t) / m", "-ln softmax(x) / m"], saves=("inputs",),
    loss="soft-cross-entropy",
    hint="x and the target probabilities must have the same shape.")


def softmax_cross_entropy_probs(x, target, axis=1, reduction="mean"):
    """Cross-entropy of scores `x` against probability rows `target` (same shape), one
    primitive; the mean is over every position but the class `axis`.

    >>> import chainrule as cr
    >>> round(softmax_cross_entropy_probs(cr.tensor([[2.0, 0.0, 0.0]]),
    ...                                   cr.tensor([[1.0, 0.0, 0.0]])).item(), 4)
    0.2395
    """
    x = as_tensor(x)
    return apply(SOFTMAX_XENT_PROBS, (x, as_tensor(target, x)), axis=axis % x.ndim,
                 reduction=reduction)


# ---------------------------------------------------------------- max-pool

def _window_entries(x, k):
    """The k·k strided views x[:, :, i::k, j::k] (cropped to whole windows), in row-major
    window order: NumPy's multi-axis max over a reshaped view is ~15× slower than this."""
    # a channels-last x (a conv's output) is slow to stride over
    x = backend.xp_of(x).ascontiguousarray(x)
    oh, ow = x.shape[2] // k, x.shape[3] // k
    for i in range(k):
        for j in range(k):
            yield i * k + j, x[:, :, i:i + oh * k:k, j:j + ow * k:k]


def _pool_index(x, k):
    """For each k×k window (stride k, no padding) of x (N, C, H, W): the flat position in
    H·W of its first largest entry (PyTorch's choice at ties), shaped (N, C, oh, ow)."""
    best, pos = None, None
    small = np.int16 if k * k <= np.iinfo(np.int16).max else np.int64   # positions 0..k²-1
    for p, view in _window_entries(x, k):
        if best is None:
            best, pos = view.copy(), backend.xp_of(view).zeros(view.shape, dtype=small)
            continue
        # strictly: the first largest entry keeps the gradient; NOTE: a nan is the largest,
        # and the last nan of a window keeps it (PyTorch's choice)
        better = (view > best) | np.isnan(view)
        np.maximum(best, view, out=best)
        np.copyto(pos, p, where=better)
    oh, ow = pos.shape[2:]
    w = x.shape[3]
    row, col = np.divmod(pos, small(k))
    xp = backend.xp_of(pos)
    return (xp.arange(oh)[:, None] * k + row) * w + (xp.arange(ow) * k + col)


def _pool_forward(x, kernel):
    out = None
    for _, view in _window_entries(x, kernel):
        out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


def _pool_rule(g, y, x, kernel):
    return POOL_SCATTER(g, index=_pool_index(value(x), kernel), shape=x.shape)


def _pool_first_order_kernel(g, y, x, kernel):
    """max_pool2d's first-order kernel: the input gradient of _pool_rule, on arrays.

    The gradient is g at each window's first entry equal to its maximum: x compared with the
    upsampled maxima, and where a window holds its maximum more than once (all-zero windows
    after a ReLU) a pass over the k² positions keeps only the first; ~3x faster than building
    the index (bench/NOTES.md). Windows that do not tile the image, and NaNs, take the index
    path, and so does a device, where the tests for ties and NaNs would each wait for the GPU
    to read a value back."""
    k = kernel
    h, w = x.shape[2], x.shape[3]
    if (type(x) is not np.ndarray or (h, w) != (y.shape[2] * k, y.shape[3] * k)
            or np.isnan(y).any()):
        return _scatter_forward(g, _pool_index(x, k), x.shape)
    hits = x == _upsample(y, k)
    if np.count_nonzero(hits) != y.size:      # ties: keep the first hit of each window
        todo = backend.xp_of(y).ones(y.shape, dtype=bool)
        for i in range(k):
            for j in range(k):
                hit = hits[:, :, i::k, j::k]
                hit &= todo
                todo ^= hit                   # hit ⊆ todo, so xor clears those windows
    return hits * _upsample(g, k)


def _upsample(a, k):
    """Each entry of a (N, C, oh, ow) repeated over its k×k window: (N, C, oh·k, ow·k)."""
    n, c, oh, ow = a.shape
    out = backend.xp_of(a).empty((n, c, oh, k, ow * k), dtype=a.dtype)
    out[...] = np.repeat(a, k, axis=3)[:, :, :, None, :]   # long inner runs: fast copies
    return out.reshape(n, c, oh * k, ow * k)


def _scatter_forward(g, index, shape):
    n, c = shape[:2]
    out = backend.xp_of(g).zeros((n, c, shape[2] * shape[3]), dtype=g.dtype)
    np.put_along_axis(out, index.reshape(n, c, -1), g.reshape(n, c, -1), axis=2)
    return out.reshape(shape)


def _gather(v, index):
    n, c = index.shape[:2]
    flat, xp = v.reshape(n, c, -1), backend.xp_of(value(index))
    return flat[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None], index]


MAX_POOL = Primitive(
    "max_pool2d", _pool_forward, [_pool_rule], formula="max of each k×k window",
    derivs=["1 at the window's first largest entry, 0 elsewhere"], saves=("inputs", "output"),
    domain="distinct", hint="x must be (N, C, H, W) with H and W at least the kernel size.",
    first_order_kernel=[_pool_first_order_kernel])
POOL_SCATTER = Primitive(
    "max_pool2d_scatter", _scatter_forward,
    [lambda g, y, v, index, shape: _gather(g, index)],
    formula="zeros with each window's value put at its largest entry",
    derivs=["1 at that entry"], saves=(), linear=True)


def max_pool2d(x, kernel):
    """Max-pooling over non-overlapping kernel×kernel windows (stride = kernel, no padding,
    PyTorch's floor for sizes that do not divide) as one primitive.

    >>> import chainrule as cr
    >>> max_pool2d(cr.arange(16.0).reshape(1, 1, 4, 4), 2).reshape(-1).tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    return apply(MAX_POOL, (as_tensor(x),), kernel=int(kernel))
