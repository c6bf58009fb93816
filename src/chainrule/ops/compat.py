"""PyTorch's functions that programs written for PyTorch call, composed from the primitives
(log10, masked_fill, repeat, narrow, gather, sort, topk) or computed outside the graph
(isnan, eq, allclose, histc, histogram). None is a primitive: their gradients come from the
primitives they call (getitem, where, expand, log, mul), so explain shows those.
"""
import collections
import math

from .. import backend
from ..errors import DTypeError, IndexError_, ShapeError
from ..tensor import Tensor
from .axes import normalize_axis
from .elementwise import cast, compare, log, where
from .registry import as_tensor, compute, decide
from .shape import expand, getitem, reshape

np = backend.np

ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])
Histogram = collections.namedtuple("Histogram", ["hist", "bin_edges"])


def is_tensor(obj):
    """Whether `obj` is a chainrule Tensor (PyTorch's `torch.is_tensor`).

    >>> import chainrule as cr
    >>> cr.is_tensor(cr.ones(2)), cr.is_tensor([1.0])
    (True, False)
    """
    return isinstance(obj, Tensor)


# ----- tests on values (bool tensors outside the graph) -----
def isnan(x):
    """True where `x` is NaN.

    >>> import chainrule as cr
    >>> cr.isnan(cr.tensor([1.0, float("nan")])).tolist()
    [False, True]
    """
    return compute(np.isnan, (as_tensor(x),))


def isinf(x):
    """True where `x` is +inf or -inf.

    >>> import chainrule as cr
    >>> cr.isinf(cr.tensor([1.0, float("-inf")])).tolist()
    [False, True]
    """
    return compute(np.isinf, (as_tensor(x),))


def isfinite(x):
    """True where `x` is neither NaN nor infinite.

    >>> import chainrule as cr
    >>> cr.isfinite(cr.tensor([1.0, float("inf")])).tolist()
    [True, False]
    """
    return compute(np.isfinite, (as_tensor(x),))


def eq(a, b):
    """a == b elementwise (a bool tensor), PyTorch's `torch.eq`.

    >>> import chainrule as cr
    >>> cr.eq(cr.tensor([1, 2]), 2).tolist()
    [False, True]
    """
    return compare(np.equal, as_tensor(a), b)


def ne(a, b):
    """a != b elementwise.

    >>> import chainrule as cr
    >>> cr.ne(cr.tensor([1, 2]), 2).tolist()
    [True, False]
    """
    return compare(np.not_equal, as_tensor(a), b)


def lt(a, b):
    """a < b elementwise.

    >>> import chainrule as cr
    >>> cr.lt(cr.tensor([1, 2]), 2).tolist()
    [True, False]
    """
    return compare(np.less, as_tensor(a), b)


def le(a, b):
    """a <= b elementwise.

    >>> import chainrule as cr
    >>> cr.le(cr.tensor([1, 3]), 2).tolist()
    [True, False]
    """
    return compare(np.less_equal, as_tensor(a), b)


def gt(a, b):
    """a > b elementwise.

    >>> import chainrule as cr
    >>> cr.gt(cr.tensor([1, 3]), 2).tolist()
    [False, True]
    """
    return compare(np.greater, as_tensor(a), b)


def ge(a, b):
    """a >= b elementwise.

    >>> import chainrule as cr
    >>> cr.ge(cr.tensor([1, 2]), 2).tolist()
    [False, True]
    """
    return compare(np.greater_equal, as_tensor(a), b)


def equal(a, b):
    """True when `a` and `b` have the same shape and the same values (a Python bool).

    >>> import chainrule as cr
    >>> cr.equal(cr.tensor([1, 2]), cr.tensor([1, 2])), cr.equal(cr.tensor([1]), cr.tensor([1, 1]))
    (True, False)
    """
    a, b = as_tensor(a), as_tensor(b)
    return decide(lambda x, y: x.shape == y.shape and bool(np.array_equal(x, y)), a._data, b._data)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when |a - b| <= atol + rtol |b| everywhere (a Python bool; shapes broadcast).

    NOTE: tensors of different float dtypes are compared (PyTorch refuses them).

    >>> import chainrule as cr
    >>> cr.allclose(cr.tensor([1.0, 2.0]), cr.tensor([1.0, 2.0 + 1e-7]))
    True
    """
    a, b = as_tensor(a), as_tensor(b)
    try:
        return decide(lambda x, y: bool(np.allclose(x, y, rtol=rtol, atol=atol,
                                                    equal_nan=equal_nan)), a._data, b._data)
    except ValueError as exc:
        raise ShapeError(f"allclose: shapes {a.shape} and {b.shape} do not broadcast") from exc


# ----- composites -----
_LOG10 = 1.0 / math.log(10.0)
_LOG2 = 1.0 / math.log(2.0)


def log10(x):
    """Base-10 logarithm, ln(x)/ln(10); its gradient is 1/(x ln 10).

    >>> import chainrule as cr
    >>> cr.log10(cr.tensor([1.0, 100.0])).tolist()
    [0.0, 2.0]
    """
    return log(x) * _LOG10


def log2(x):
    """Base-2 logarithm, ln(x)/ln(2).

    >>> import chainrule as cr
    >>> cr.log2(cr.tensor([1.0, 8.0])).tolist()
    [0.0, 3.0]
    """
    return log(x) * _LOG2


def _bool_mask(mask, op):
    mask = as_tensor(mask)
    if mask.dtype != backend.bool_:
        raise DTypeError(f"{op}: the mask must be a bool tensor, got {mask.dtype}; compare to "
                         "make one (x > 0) or convert it with .bool()")
    return mask


def masked_fill(x, mask, value):
    """`x` with `value` where `mask` (a bool tensor, broadcast to x's shape) is True; the
    gradient flows to x where mask is False.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0])
    >>> cr.masked_fill(x, x > 1.5, 0.0).tolist()
    [1.0, 0.0, 0.0]
    """
    x = as_tensor(x)
    mask = _bool_mask(mask, "masked_fill")
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                         f"{value.shape}")
    out = where(mask, value, x)
    if out.shape != x.shape:
        raise ShapeError(f"masked_fill: the mask of shape {mask.shape} does not broadcast to "
                         f"the tensor's shape {x.shape}")
    return out if out.dtype == x.dtype else cast(out, x.dtype)


def repeat(x, *sizes):
    """`x` tiled `sizes[i]` times along dimension i (PyTorch's `Tensor.repeat`; extra leading
    sizes add dimensions). The gradient sums the copies.

    >>> import chainrule as cr
    >>> cr.tensor([1, 2]).repeat(2, 2).tolist()
    [[1, 2, 1, 2], [1, 2, 1, 2]]
    """
    x = as_tensor(x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: {len(sizes)} repeat counts for a tensor with {x.ndim} "
                         "dimensions; give one per dimension (extra ones go in front)")
    if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0 for r in sizes):
        raise ShapeError(f"repeat: counts must be ints >= 0, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    spread = [d for n in shape for d in (1, n)]
    tiled = [d for r, n in zip(sizes, shape) for d in (r, n)]
    return reshape(expand(reshape(x, spread), tiled), [r * n for r, n in zip(sizes, shape)])


def narrow(x, dim, start, length):
    """The slice start:start+length of dimension `dim` (a view, as x[..., start:start+length]).

    >>> import chainrule as cr
    >>> cr.narrow(cr.arange(6).reshape(2, 3), 1, 1, 2).tolist()
    [[1, 2], [4, 5]]
    """
    x = as_tensor(x)
    (d,) = normalize_axis(dim, x.ndim, "narrow")
    n = x.shape[d]
    if start < 0:
        start += n
    if not (0 <= start <= n and 0 <= length and start + length <= n):
        raise IndexError_(f"narrow: start {start} + length {length} is outside dimension {d} "
                          f"of size {n} (shape {x.shape})")
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def _along(indices, dim):
    """The integer index that picks `indices` along `dim` (and every position elsewhere)."""
    xp, n = backend.xp_of(indices), indices.ndim   # np.indices(sparse=True), in indices' module
    grid = [xp.arange(s).reshape((1,) * i + (s,) + (1,) * (n - i - 1))
            for i, s in enumerate(indices.shape)]
    grid[dim] = indices
    return tuple(grid)


def gather(x, dim, index):
    """out[i][j] = x[index[i][j]][j] (dim 0), PyTorch's `torch.gather`; the gradient adds
    back into the picked positions.

    >>> import chainrule as cr
    >>> cr.gather(cr.tensor([[1.0, 2.0], [3.0, 4.0]]), 1, cr.tensor([[1], [0]])).tolist()
    [[2.0], [3.0]]
    """
    x = as_tensor(x)
    (d,) = normalize_axis(dim, x.ndim, "gather")
    idx = as_tensor(index)._data
    if idx.dtype.kind not in "iu" or idx.ndim != x.ndim:
        raise DTypeError(f"gather: index must be an integer tensor with as many dimensions as "
                         f"the input ({x.ndim}), got {idx.dtype} of shape {idx.shape}")
    return getitem(x, _along(idx, d))


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along `dim`; ties keep their order. The gradient of the
    values goes back to the positions they came from.

    >>> import chainrule as cr
    >>> values, indices = cr.sort(cr.tensor([3.0, 1.0, 2.0]))
    >>> values.tolist(), indices.tolist()
    ([1.0, 2.0, 3.0], [1, 2, 0])
    """
    x = as_tensor(x)
    if x.ndim == 0:
        return ValuesIndices(x, compute(lambda a: backend.xp_of(a).zeros((), np.int64), (x,)))
    (d,) = normalize_axis(dim, x.ndim, "sort")
    order = compute(_argsort, (x,), axis=d, descending=bool(descending))
    return ValuesIndices(getitem(x, _along(order._data, d)), order)


def _argsort(a, axis, descending):
    if descending:   # stable from the largest: sort the reversed axis, then map back
        flipped = np.flip(a, axis)
        order = np.argsort(flipped, axis=axis, kind="stable")
        order = a.shape[axis] - 1 - np.flip(order, axis)
        return order.astype(np.int64)
    return np.argsort(a, axis=axis, kind="stable").astype(np.int64)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (or smallest) entries along `dim`.

    >>> import chainrule as cr
    >>> values, indices = cr.topk(cr.tensor([1.0, 5.0, 3.0]), 2)
    >>> values.tolist(), indices.tolist()
    ([5.0, 3.0], [1, 2])
    """
    x = as_tensor(x)
    d = normalize_axis(dim, x.ndim, "topk")[0] if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise IndexError_(f"topk: k={k!r} is outside [0, {n}] for dimension {d} of shape "
                          f"{x.shape}")
    values, indices = sort(x, d, descending=largest)
    if x.ndim == 0:
        return ValuesIndices(values, indices)
    pick = (slice(None),) * d + (slice(0, k),)
    return ValuesIndices(getitem(values, pick), getitem(indices, pick))


# ----- histograms (counts, outside the graph) -----
def _float_data(x, op):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: expects a floating tensor, got {x.dtype}; convert it with "
                         ".float()")
    return x


def histc(x, bins=100, min=0, max=0):
    """Counts of `x`'s values in `bins` equal bins over [min, max] (both 0: the data's own
    range); values outside are ignored, max falls in the last bin. PyTorch's `torch.histc`:
    a tensor of x's dtype.

    >>> import chainrule as cr
    >>> cr.histc(cr.tensor([1.0, 2.0, 1.0]), bins=4, min=0, max=3).tolist()
    [0.0, 2.0, 1.0, 0.0]
    """
    x = _float_data(x, "histc")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins <= 0:
        raise ShapeError(f"histc: bins must be a positive int, got {bins!r}")
    if min > max:
        raise ShapeError(f"histc: max ({max}) must be at least min ({min})")
    return compute(_histc, (x,), bins=int(bins), lo=min, hi=max)


def _histc(a, bins, lo, hi):
    dt = a.dtype
    if lo == hi and a.size:
        finite = a[np.isfinite(a)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (lo, hi)
    # (on a device the data's own range is 0-d arrays: cast there, not made host scalars)
    lo, hi = (v.astype(dt) if backend.is_array(v) else dt.type(v) for v in (lo, hi))
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    flat = a.reshape(-1)
    inside = flat[(flat >= lo) & (flat <= hi)]
    # PyTorch's arithmetic, in the input's dtype: pos = (x - min) * bins / (max - min)
    pos = ((inside - lo) * dt.type(bins) / (hi - lo)).astype(np.int64)
    pos[pos == bins] = bins - 1
    return np.bincount(pos, minlength=bins).astype(dt)


def histogram(x, bins=100, *, range=None, weight=None, density=False):
    """(hist, bin_edges): counts (or weights, or a density) of `x` in `bins` equal bins over
    `range` (the data's own range when None), or over the given edges (a 1-D tensor), as
    PyTorch's `torch.histogram`.

    >>> import chainrule as cr
    >>> hist, edges = cr.histogram(cr.tensor([1.0, 2.0, 1.0, 4.0]), bins=3)
    >>> hist.tolist(), edges.tolist()
    ([2.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    """
    x = _float_data(x, "histogram")
    if isinstance(bins, Tensor):
        edges = bins._data.astype(x.dtype)
        if edges.ndim != 1 or edges.size < 2 or (np.diff(edges) < 0).any():
            raise ShapeError("histogram: bin edges must be a 1-D increasing tensor of at least "
                             "two values")
    else:
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins <= 0:
            raise ShapeError(f"histogram: bins must be a positive int or a tensor of edges, got "
                             f"{bins!r}")
        edges = None
    w = None if weight is None else as_tensor(weight)._data
    if w is not None and w.shape != x.shape:
        raise ShapeError(f"histogram: weight of shape {w.shape} must have the input's shape "
                         f"{x.shape}")
    hist, out_edges = _histogram(x._data, bins if edges is None else edges, range, w, density)
    return Histogram(Tensor._wrap(hist), Tensor._wrap(out_edges))


def _histogram(a, bins, range, weight, density):
    dt = a.dtype
    if backend.is_array(bins):
        edges = bins
    else:
        lo, hi = range if range is not None else (
            (a.min(), a.max()) if a.size else (0.0, 0.0))
        if lo > hi:
            raise ShapeError(f"histogram: range {range} has min above max")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, int(bins) + 1).astype(dt)
    hist, _ = np.histogram(a.reshape(-1), bins=edges.astype(np.float64),
                           weights=None if weight is None else weight.reshape(-1),
                           density=density)
    return hist.astype(dt), edges.astype(dt)
