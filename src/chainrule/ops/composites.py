"""Composites: functions built from primitives, not primitives themselves (mean, var, std,
norm, logsumexp, softmax, log_softmax). Their gradients come from the primitives they call;
the reduction primitives (sum, max, min) are in ops/reductions.py."""
from .. import backend
from ..errors import ShapeError
from .axes import reduce_axes
from .reductions import max, sum
from .registry import as_tensor, compute, decide

np = backend.np


def _reduced_count(x, axis):
    n = 1
    for a in reduce_axes(axis, x, "norm"):
        n *= x.shape[a]
    return n


def _count(x, axis):
    axes = reduce_axes(axis, x, "mean")
    n = 1
    for a in axes:
        n *= x.shape[a]
    if n == 0:
        raise ShapeError(f"mean: reducing a tensor of shape {x.shape} over axis {axis} averages "
                         "no values (an empty dimension); check the slice or batch that "
                         "produced it.")
    return n


def mean(x, axis=None, keepdims=False):
    """Average over `axis` (an int, a tuple, or None for all): the sum times 1/n.

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = cr.mean(x)
    >>> y.backward()
    >>> y.item(), x.grad.tolist()
    (2.5, [[0.25, 0.25], [0.25, 0.25]])
    """
    x = as_tensor(x)
    if x.dtype == backend.float16:
        return _in_float32(mean, x, axis, keepdims)
    return sum(x, axis, keepdims) * (1.0 / _count(x, axis))


def _in_float32(fn, x, *args, **kwargs):
    """fn(x) computed in float32 and returned in float16.

    NOTE: reductions of float16 accumulate in float32, as in PyTorch: the mean of 1,000 ×
    100.0 is 100, not the inf of a float16 sum, and squares in var and norm do not overflow.
    The casts are recorded, so the gradient comes back in float16."""
    from .elementwise import cast
    return cast(fn(cast(x, backend.float32), *args, **kwargs), backend.float16)


def var(x, axis=None, keepdims=False, correction=1):
    """Variance; `correction=1` (the default, as in PyTorch) divides by n - 1.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0, 4.0])
    >>> round(cr.var(x).item(), 4), cr.var(x, correction=0).item()
    (1.6667, 1.25)
    """
    x = as_tensor(x)
    if x.dtype == backend.float16:
        return _in_float32(var, x, axis, keepdims, correction)
    d = x - mean(x, axis, keepdims=True)
    n = _count(x, axis)
    if n - correction <= 0:
        raise ShapeError(f"var: {n} value(s) over axis {axis} of a tensor of shape {x.shape} "
                         f"with correction={correction} leave no degrees of freedom; pass "
                         "correction=0 (the biased variance) or reduce over more values.")
    return sum(d * d, axis, keepdims) * (1.0 / (n - correction))


def std(x, axis=None, keepdims=False, correction=1):
    """Standard deviation, √var; `correction=1` (the default) as in PyTorch.

    >>> import chainrule as cr
    >>> cr.tensor([1.0, 3.0]).std().item()
    1.4142135381698608
    """
    x = as_tensor(x)
    if x.dtype == backend.float16:   # the variance may pass 65504 where the std does not
        return _in_float32(std, x, axis, keepdims, correction)
    return _sqrt_zero_grad_at_zero(var(x, axis, keepdims, correction))


def _sqrt_zero_grad_at_zero(v):
    """√v whose gradient is 0 where v = 0.

    NOTE: where v is 0 (a variance of equal values, a norm of zeros) the gradient is 0, as in
    PyTorch, not the nan of √'(0)·0: √ is taken of 1 there and masked by the outer where."""
    if not decide(_has_zero, v._data):
        return v.sqrt()
    from .elementwise import where
    zero = v == 0
    return where(zero, 0.0, where(zero, 1.0, v).sqrt())


def _has_zero(a):
    return bool((a == 0).any())


def norm(x, p=2, axis=None, keepdims=False):
    """The p-norm over `axis` (all entries when None) for p = 2, 1 or inf; as in PyTorch the
    2-norm's gradient at a zero vector is 0.

    >>> import chainrule as cr
    >>> cr.tensor([3.0, 4.0]).norm().item()
    5.0
    >>> cr.tensor([[3.0, -4.0], [0.0, 0.0]]).norm(p=1, dim=1).tolist()
    [7.0, 0.0]
    """
    x = as_tensor(x)
    if x.dtype == backend.float16 and p == 2:
        return _in_float32(norm, x, p, axis, keepdims)
    if p == 2 and _reduced_count(x, axis) == 1:
        # one value per result: |x| exactly (PyTorch), where x·x would underflow below 1e-19
        # (float32) and overflow above 1e19
        return sum(x.abs(), axis, keepdims)
    if p == 2:
        return _sqrt_zero_grad_at_zero(sum(x * x, axis, keepdims))
    if p == 1:
        return sum(x.abs(), axis, keepdims)
    if p in (float("inf"), "inf"):
        return max(x.abs(), axis, keepdims)
    raise ShapeError(f"norm: p={p!r} is not supported; use p=2 (default), 1 or float('inf')")


def _stable_shift(x, axis, op, keep_inf=False):
    """The max along `axis` as a constant, so exp never overflows: finite (a non-finite max
    becomes 0), or with keep_inf only -inf becomes 0, so a +inf (or nan) in a softmax row
    makes the whole row nan, as in PyTorch. Over an empty axis it is 0 (PyTorch: the softmax
    of no values is empty, their logsumexp -inf)."""
    return compute(_softmax_max if keep_inf else _finite_max, (x,), axis=axis)


def _row_max(x, axis):
    """The max along `axis` (kept); -inf for an empty row of floats (integers have no -inf
    and no empty-row answer, so they keep NumPy's own error for that case)."""
    if x.dtype.kind == "f" and x.size == 0:   # (not max's initial=: CuPy's max has none)
        return backend.xp_of(x).full_like(x.sum(axis=axis, keepdims=True), -np.inf)
    return np.max(x, axis=axis, keepdims=True)


def _finite_max(x, axis):
    m = _row_max(x, axis)
    return np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)


def _softmax_max(x, axis):
    m = _row_max(x, axis)
    return np.where(m == -np.inf, 0, m).astype(x.dtype, copy=False)


def logsumexp(x, axis=None, keepdims=False):
    """log Σ exp(x), computed without overflow (stable for logits of 1e4).

    >>> import chainrule as cr
    >>> round(cr.logsumexp(cr.tensor([0.0, 0.0])).item(), 4)
    0.6931
    >>> cr.logsumexp(cr.tensor([1e4, 1e4]), axis=0).item()
    10000.693359375
    """
    x = as_tensor(x)
    axes = reduce_axes(axis, x, "logsumexp")
    m = _stable_shift(x, axes, "logsumexp")
    out = sum((x - m).exp(), axes, keepdims=True).log() + m
    return out if keepdims else out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def softmax(x, axis=-1):
    """exp(x) / Σ exp(x) along `axis`, stable for large logits.

    >>> import chainrule as cr
    >>> cr.softmax(cr.tensor([[0.0, 0.0], [1e4, 0.0]])).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    """
    x = as_tensor(x)
    axis = reduce_axes(axis, x, "softmax")
    e = (x - _stable_shift(x, axis, "softmax", keep_inf=True)).exp()
    return e / sum(e, axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`, as (x - m) - ln Σ exp(x - m) for the row maximum m (a
    +inf or nan in a row makes the row nan, as in PyTorch).

    >>> import chainrule as cr
    >>> [round(v, 4) for v in cr.log_softmax(cr.tensor([0.0, 0.0])).tolist()]
    [-0.6931, -0.6931]
    """
    x = as_tensor(x)
    axes = reduce_axes(axis, x, "log_softmax")
    s = x - _stable_shift(x, axes, "log_softmax", keep_inf=True)
    return s - sum(s.exp(), axes, keepdims=True).log()
