"""Reduction primitives (sum, max, min) and the reductions composed from them."""
import builtins

import numpy as np

from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .registry import Primitive, apply, as_tensor

AXIS_HINT = "Check `axis`: each must lie in [-ndim, ndim)."


def normalize_axis(axis, ndim, op):
    """`axis` as a sorted tuple of non-negative ints (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else _axis_tuple(axis, op)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise DTypeError(f"{op}: axis {a!r} is a {type(a).__name__}, not an int; "
                             f"{AXIS_HINT}")
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):  # a 0-d tensor takes 0, -1
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor with {ndim} "
                             f"dimensions; {AXIS_HINT}")
        out.append(int(a) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: axis {axis!r} names the same dimension twice (for a tensor with "
                         f"{ndim} dimensions); give each axis once.")
    return tuple(sorted(out))


def reduce_axes(axis, x, op):
    """The axes a reduction of `x` runs over. A 0-d tensor accepts axis 0 or -1 (PyTorch)
    and has nothing to reduce."""
    axes = normalize_axis(axis, x.ndim, op)
    return axes if x.ndim else ()


def _axis_tuple(axis, op):
    # only tuples and lists: a str, dict or array would otherwise iterate into "no axes"
    if isinstance(axis, (tuple, list)):
        return tuple(axis)
    raise DTypeError(f"{op}: axis {axis!r} is a {type(axis).__name__}; pass an int, a tuple "
                     f"of ints or None. {AXIS_HINT}")


def expand_reduced(g, shape, axes, keepdims):
    """Broadcast a reduced gradient back to the input's `shape`."""
    if not keepdims:
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        g = g.reshape(kept)
    return g.expand(shape)


def _sum_rule(g, y, x, axes, keepdims):
    return expand_reduced(g, x.shape, axes, keepdims)


def _sum_rule_array(g, y, x, axes, keepdims):       # _sum_rule's first-order twin on arrays
    if not keepdims:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(x.shape)))
    return np.broadcast_to(g, x.shape)


def _extremum_rule(g, y, x, axes, keepdims):
    # NOTE: ties share the gradient evenly (PyTorch's amax/amin and full max()).
    yk = y.data if keepdims else np.expand_dims(y.data, axes)
    mask = x.data == yk
    share = mask / mask.sum(axis=axes, keepdims=True)
    return expand_reduced(g, x.shape, axes, keepdims) * Tensor._wrap(share.astype(g.dtype))


# np.add.reduce, not np.sum: the same reduction without np.sum's Python wrapper (measured
# 2.7 -> 1.1 µs on 16 elements, bench/NOTES.md); results and dtypes are identical.
SUM = Primitive("sum", lambda x, axes, keepdims: np.add.reduce(x, axis=axes, keepdims=keepdims),
                [_sum_rule], "Σ x", ["1"], AXIS_HINT, array_vjps=[_sum_rule_array])
MAX = Primitive("max", lambda x, axes, keepdims: np.max(x, axis=axes, keepdims=keepdims),
                [_extremum_rule], "max x", ["[x = max] / #ties"], AXIS_HINT)
MIN = Primitive("min", lambda x, axes, keepdims: np.min(x, axis=axes, keepdims=keepdims),
                [_extremum_rule], "min x", ["[x = min] / #ties"], AXIS_HINT)


def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (an int, a tuple, or None for all).

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> cr.sum(x).item(), cr.sum(x, axis=0).tolist(), cr.sum(x, 1, keepdims=True).shape
    (10.0, [4.0, 6.0], (2, 1))
    """
    x = as_tensor(x)
    return apply(SUM, (x,), axes=reduce_axes(axis, x, "sum"), keepdims=keepdims)


def _extremum(prim, x, axis, keepdims):
    x = as_tensor(x)
    axes = reduce_axes(axis, x, prim.name)
    if x.data.size == 0:
        raise ShapeError(f"{prim.name}: the tensor of shape {x.shape} is empty, so it has no "
                         f"{prim.name}imum; check the slice that produced it.")
    return apply(prim, (x,), axes=axes, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    """Largest value over `axis`; ties share the gradient evenly.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 3.0, 3.0], requires_grad=True)
    >>> y = cr.max(x)
    >>> y.backward()
    >>> y.item(), x.grad.tolist()
    (3.0, [0.0, 0.5, 0.5])
    """
    return _extremum(MAX, x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    """Smallest value over `axis`; ties share the gradient evenly.

    >>> import chainrule as cr
    >>> cr.min(cr.tensor([[4.0, 1.0], [2.0, 5.0]]), axis=1).tolist()
    [1.0, 2.0]
    """
    return _extremum(MIN, x, axis, keepdims)


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
    return sum(x, axis, keepdims) * (1.0 / _count(x, axis))


def var(x, axis=None, keepdims=False, correction=1):
    """Variance; `correction=1` (the default, as in PyTorch) divides by n - 1.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0, 4.0])
    >>> round(cr.var(x).item(), 4), cr.var(x, correction=0).item()
    (1.6667, 1.25)
    """
    x = as_tensor(x)
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
    return _sqrt_zero_grad_at_zero(var(x, axis, keepdims, correction))


def _sqrt_zero_grad_at_zero(v):
    """√v whose gradient is 0 where v = 0.

    NOTE: where v is 0 (a variance of equal values, a norm of zeros) the gradient is 0, as in
    PyTorch, not the nan of √'(0)·0: √ is taken of 1 there and masked by the outer where."""
    zero = v.data == 0
    if not zero.any():
        return v.sqrt()
    from .elementwise import where
    return where(zero, 0.0, where(zero, 1.0, v).sqrt())


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
    if p == 2:
        return _sqrt_zero_grad_at_zero(sum(x * x, axis, keepdims))
    if p == 1:
        return sum(x.abs(), axis, keepdims)
    if p in (float("inf"), "inf"):
        return max(x.abs(), axis, keepdims)
    raise ShapeError(f"norm: p={p!r} is not supported; use p=2 (default), 1 or float('inf')")


def _stable_shift(x, axis, op):
    """The max along `axis` as a constant (finite), so exp never overflows."""
    if x.data.size == 0:
        raise ShapeError(f"{op}: the tensor of shape {x.shape} is empty, so there is nothing to "
                         "normalise over; check the slice or batch that produced it.")
    m = np.max(x.data, axis=axis, keepdims=True)
    return Tensor._wrap(np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False))


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
    e = (x - _stable_shift(x, axis, "softmax")).exp()
    return e / sum(e, axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`.

    >>> import chainrule as cr
    >>> [round(v, 4) for v in cr.log_softmax(cr.tensor([0.0, 0.0])).tolist()]
    [-0.6931, -0.6931]
    """
    x = as_tensor(x)
    return x - logsumexp(x, axis, keepdims=True)
