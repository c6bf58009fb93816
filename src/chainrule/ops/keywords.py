"""PyTorch's keyword spellings beside NumPy's, for the public functions that take an axis.

`x.sum(dim=1, keepdim=True)` is `x.sum(axis=1, keepdims=True)`. One deliberate difference
from a plain alias: `max`/`min` given `dim=` return `(values, indices)`, as `torch.max(x, dim)`
does, so `values, idx = x.max(dim=1)` never silently unpacks rows instead. Without `dim=` they
return the values only (NumPy/JAX style), with ties sharing the gradient.
"""
import collections
import functools

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from . import composites, reductions, shape
from .axes import normalize_axis
from .registry import as_tensor

np = backend.np

_UNSET = object()

ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])


def torch_keywords(fn):
    """Let `fn(..., axis=, keepdims=)` also be called with `dim=` / `keepdim=`."""
    @functools.wraps(fn)
    def wrapper(*args, dim=_UNSET, keepdim=_UNSET, **kwargs):
        if dim is not _UNSET:
            if "axis" in kwargs:
                raise TypeError(f"{fn.__name__}: give axis= or dim=, not both")
            kwargs["axis"] = dim
        if keepdim is not _UNSET:
            if "keepdims" in kwargs:
                raise TypeError(f"{fn.__name__}: give keepdims= or keepdim=, not both")
            kwargs["keepdims"] = keepdim
        return fn(*args, **kwargs)
    return wrapper


sum = torch_keywords(reductions.sum)
mean = torch_keywords(composites.mean)
var = torch_keywords(composites.var)
std = torch_keywords(composites.std)
norm = torch_keywords(composites.norm)
logsumexp = torch_keywords(composites.logsumexp)
softmax = torch_keywords(composites.softmax)
log_softmax = torch_keywords(composites.log_softmax)
concatenate = cat = torch_keywords(shape.concatenate)
stack = torch_keywords(shape.stack)
split = torch_keywords(shape.split)
squeeze = torch_keywords(shape.squeeze)
unsqueeze = torch_keywords(shape.unsqueeze)


def _index_of(pick, x, axis, keepdims):
    x = as_tensor(x)
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, pick.__name__)
        if len(axis) != 1:
            raise ShapeError(f"{pick.__name__}: takes one axis (or None for the flattened "
                             f"tensor), got {axis}")
        axis = axis[0] if x.ndim else None
    if x.data.size == 0:
        raise ShapeError(f"{pick.__name__}: the tensor of shape {x.shape} is empty")
    return Tensor._wrap(np.asarray(pick(x.data, axis=axis, keepdims=keepdims)))


@torch_keywords
def argmax(x, axis=None, keepdims=False):
    """Index of the largest value along `axis` (of the flattened tensor when None).

    >>> import chainrule as cr
    >>> cr.argmax(cr.tensor([[1.0, 5.0], [7.0, 2.0]]), dim=1).tolist()
    [1, 0]
    """
    return _index_of(np.argmax, x, axis, keepdims)


@torch_keywords
def argmin(x, axis=None, keepdims=False):
    """Index of the smallest value along `axis` (of the flattened tensor when None).

    >>> import chainrule as cr
    >>> cr.argmin(cr.tensor([3.0, 1.0, 2.0])).item()
    1
    """
    return _index_of(np.argmin, x, axis, keepdims)


def _extremum(reduce, pick, x, axis, keepdims, dim, keepdim):
    if dim is None:
        if keepdim is not None:
            keepdims = keepdim
        return reduce(x, axis, keepdims)
    if axis is not None:
        raise TypeError(f"{reduce.__name__}: give axis= or dim=, not both")
    keepdim = bool(keepdim)
    return ValuesIndices(reduce(x, dim, keepdim), _index_of(pick, x, dim, keepdim))


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Largest value over `axis` (ties share the gradient); with PyTorch's `dim=`,
    `(values, indices)` as `torch.max(x, dim)` returns.

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> cr.max(x, axis=1).tolist()
    [5.0, 7.0]
    >>> values, indices = cr.max(x, dim=1)
    >>> values.tolist(), indices.tolist()
    ([5.0, 7.0], [1, 0])
    """
    return _extremum(reductions.max, np.argmax, x, axis, keepdims, dim, keepdim)


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Smallest value over `axis` (ties share the gradient); with PyTorch's `dim=`,
    `(values, indices)` as `torch.min(x, dim)` returns.

    >>> import chainrule as cr
    >>> values, indices = cr.min(cr.tensor([[1.0, 5.0], [7.0, 2.0]]), dim=0)
    >>> values.tolist(), indices.tolist()
    ([1.0, 2.0], [0, 1])
    """
    return _extremum(reductions.min, np.argmin, x, axis, keepdims, dim, keepdim)
