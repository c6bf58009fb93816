"""Reduction primitives (sum, max, min) and their functions (axis arguments: ops/axes.py). The
reductions composed from them (mean, var, std, norm, logsumexp, softmax, log_softmax) are in
ops/composites.py."""
from .. import backend
from ..errors import ShapeError
from .axes import AXIS_HINT, reduce_axes
from .registry import Primitive, apply, as_tensor, value
from .shape import BROADCAST

np = backend.np


def expand_reduced(g, shape, axes, keepdims):
    """Broadcast a reduced gradient back to the input's `shape` (arrays and Tensors)."""
    if not keepdims:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return BROADCAST(g, shape=shape)


def _sum_rule(g, y, x, axes, keepdims):
    return expand_reduced(g, x.shape, axes, keepdims)


def _extremum_rule(g, y, x, axes, keepdims):
    # NOTE: ties share the gradient evenly (PyTorch's amax/amin and full max()).
    y = value(y)
    mask = value(x) == (y if keepdims else np.expand_dims(y, axes))
    share = mask / mask.sum(axis=axes, keepdims=True)
    return expand_reduced(g, x.shape, axes, keepdims) * share.astype(g.dtype)


# np.add.reduce, not np.sum: the same reduction without np.sum's Python wrapper (measured
# 2.7 -> 1.1 µs on 16 elements, bench/NOTES.md); results and dtypes are identical.
_HALF = np.dtype(np.float16)


def _sum_forward(x, axes, keepdims):
    if x.dtype is _HALF:
        # NOTE: float16 accumulates in float32 and the result is float16, as in PyTorch (a
        # float16 running sum loses every small addend once it is large, and overflows early).
        return np.add.reduce(x, axis=axes, keepdims=keepdims, dtype=np.float32).astype(_HALF)
    return np.add.reduce(x, axis=axes, keepdims=keepdims)


SUM = Primitive("sum", _sum_forward,
                [_sum_rule], formula="Σ x", derivs=["1"], saves=(), linear=True, symbol="Σ",
                hint=AXIS_HINT, algebra="total")
MAX = Primitive("max", lambda x, axes, keepdims: np.max(x, axis=axes, keepdims=keepdims),
                [_extremum_rule], formula="max x", derivs=["[x = max] / #ties"],
                domain="distinct", hint=AXIS_HINT, algebra="largest")
MIN = Primitive("min", lambda x, axes, keepdims: np.min(x, axis=axes, keepdims=keepdims),
                [_extremum_rule], formula="min x", derivs=["[x = min] / #ties"],
                domain="distinct", hint=AXIS_HINT)


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
    if x._data.size == 0 and any(x.shape[a] == 0 for a in axes):   # (over a non-empty axis
        # of an empty tensor the result is empty, as in PyTorch)
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

