"""PyTorch's keyword spellings beside NumPy's, for the public functions that take an axis.

`x.sum(dim=1, keepdim=True)` is `x.sum(axis=1, keepdims=True)`. One deliberate difference
from a plain alias: `max`/`min` given a dimension the PyTorch way (`x.max(1)`, `x.max(dim=1)`,
`x.max(1, keepdim=True)`) return `(values, indices)`, as `torch.max(x, dim)` does, so
`x.max(1)[0]` is every row's maximum, as in PyTorch. Spelled the NumPy way (`axis=`,
`keepdims=`, a tuple of axes) or with no axis they return the values only (NumPy/JAX style,
PyTorch's `amax`), with ties sharing the gradient. `x.max(other_tensor)` is the elementwise
maximum, as in PyTorch. `var`/`std` take PyTorch's positional order (dim, unbiased, keepdim)
and `unbiased=` beside `correction=`.
"""
import collections
import functools

from .. import backend
from ..errors import ShapeError
from . import compat, composites, reductions, shape
from .axes import normalize_axis
from .elementwise import maximum, minimum
from .registry import as_tensor, compute
from ..tensor import Tensor

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
    if x._data.size == 0:
        raise ShapeError(f"{pick.__name__}: the tensor of shape {x.shape} is empty")
    return compute(_picked, (x,), pick=pick, axis=axis, keepdims=keepdims)


def _picked(x, pick, axis, keepdims):
    return _array(pick(x, axis=axis, keepdims=keepdims))


def _array(r):
    """A reduction's result as an array (NumPy gives scalars; device modules 0-d arrays)."""
    return r if backend.is_array(r) else np.asarray(r)


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


def _is_dim(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _extremum(reduce, pick, pairwise, x, args, axis, keepdims, dim, keepdim):
    name = reduce.__name__
    if len(args) > 2:
        raise TypeError(f"{name}: takes at most a dim and keepdim positionally, got {len(args)} "
                        "arguments")
    if args and (isinstance(args[0], Tensor) or backend.is_array(args[0])):   # max(x, other)
        if len(args) > 1 or {axis, keepdims, dim, keepdim} != {_UNSET}:
            raise TypeError(f"{name}(x, other) is the elementwise {name}imum; it takes no axis")
        return pairwise(x, args[0])
    if args:
        if axis is not _UNSET or dim is not _UNSET:
            raise TypeError(f"{name}: the axis is given both positionally and by keyword")
        numpy_style = keepdims is not _UNSET or not _is_dim(args[0])
        if numpy_style:
            axis = args[0]
        else:
            dim = args[0]
        if len(args) == 2:
            if (keepdims if numpy_style else keepdim) is not _UNSET:
                raise TypeError(f"{name}: keepdim is given both positionally and by keyword")
            if numpy_style:
                keepdims = args[1]
            else:
                keepdim = args[1]
    if axis is not _UNSET and dim is not _UNSET:
        raise TypeError(f"{name}: give axis= or dim=, not both")
    if keepdims is not _UNSET and keepdim is not _UNSET:
        raise TypeError(f"{name}: give keepdims= or keepdim=, not both")
    keep = bool(keepdim if keepdim is not _UNSET else keepdims if keepdims is not _UNSET
                else False)
    if dim is _UNSET or dim is None or not _is_dim(dim):   # NumPy's way: the values only
        axis = dim if dim is not _UNSET else None if axis is _UNSET else axis
        return reduce(x, axis, keep)
    x = as_tensor(x)
    indices = _index_of(pick, x, dim, keep)
    if x.ndim == 0:
        return ValuesIndices(reduce(x, dim, keep), indices)
    # NOTE: the values are picked at the returned indices, so at ties the gradient goes to
    # that one entry, as in PyTorch's max(dim) (amax/axis= share it among the ties).
    (d,) = normalize_axis(dim, x.ndim, name)
    picked = indices._data if keep else np.expand_dims(indices._data, d)
    values = compat.gather(x, d, picked)
    return ValuesIndices(values if keep else shape.squeeze(values, d), indices)


def max(x, *args, axis=_UNSET, keepdims=_UNSET, dim=_UNSET, keepdim=_UNSET):
    """Largest value. PyTorch's ways: `max(x)` the value, `max(x, dim)` / `max(x, dim=d,
    keepdim=k)` the pair `(values, indices)`, `max(x, other)` the elementwise maximum. NumPy's
    way, `max(x, axis=..., keepdims=...)` (or a tuple of axes), the values only, as
    `torch.amax`. Ties share the gradient of the values.

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 5.0], [7.0, 2.0]])
    >>> cr.max(x, axis=1).tolist()
    [5.0, 7.0]
    >>> values, indices = cr.max(x, 1)
    >>> values.tolist(), indices.tolist()
    ([5.0, 7.0], [1, 0])
    >>> x.max(1)[0].tolist()
    [5.0, 7.0]
    """
    return _extremum(reductions.max, np.argmax, maximum, x, args, axis, keepdims, dim, keepdim)


def min(x, *args, axis=_UNSET, keepdims=_UNSET, dim=_UNSET, keepdim=_UNSET):
    """Smallest value; called like `max` (a dim the PyTorch way gives `(values, indices)`).

    >>> import chainrule as cr
    >>> values, indices = cr.min(cr.tensor([[1.0, 5.0], [7.0, 2.0]]), dim=0)
    >>> values.tolist(), indices.tolist()
    ([1.0, 2.0], [0, 1])
    """
    return _extremum(reductions.min, np.argmin, minimum, x, args, axis, keepdims, dim, keepdim)


@torch_keywords
def amax(x, axis=None, keepdims=False):
    """Largest values over `axis`/`dim` (an int or a tuple), values only (PyTorch's `amax`);
    ties share the gradient.

    >>> import chainrule as cr
    >>> cr.amax(cr.tensor([[1.0, 5.0], [7.0, 2.0]]), 1).tolist()
    [5.0, 7.0]
    """
    return reductions.max(x, axis, keepdims)


@torch_keywords
def amin(x, axis=None, keepdims=False):
    """Smallest values over `axis`/`dim`, values only (PyTorch's `amin`).

    >>> import chainrule as cr
    >>> cr.amin(cr.tensor([[1.0, 5.0], [7.0, 2.0]]), 0).tolist()
    [1.0, 2.0]
    """
    return reductions.min(x, axis, keepdims)


def _variance(fn, x, args, kwargs):
    """PyTorch's (dim, unbiased, keepdim) positionally; dim=/axis=, keepdim=/keepdims=,
    unbiased= or correction= by keyword."""
    name = fn.__name__
    if len(args) > 3:
        raise TypeError(f"{name}: takes (dim, unbiased, keepdim) positionally, got "
                        f"{len(args)} arguments")
    given = dict(zip(("axis", "unbiased", "keepdims"), args))
    for torch_name, numpy_name in (("dim", "axis"), ("keepdim", "keepdims")):
        if torch_name in kwargs:
            if numpy_name in kwargs:
                raise TypeError(f"{name}: give {torch_name}= or {numpy_name}=, not both")
            kwargs[numpy_name] = kwargs.pop(torch_name)
    for key, value in kwargs.items():
        if key not in ("axis", "keepdims", "unbiased", "correction"):
            raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
        if key in given:
            raise TypeError(f"{name}: {key} is given both positionally and by keyword")
        given[key] = value
    unbiased, correction = given.pop("unbiased", None), given.pop("correction", None)
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}: give unbiased= or correction=, not both")
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{name}: unbiased must be True or False, got {unbiased!r}")
        correction = int(unbiased)
    return fn(x, given.get("axis"), bool(given.get("keepdims", False)),
              1 if correction is None else correction)


def var(x, *args, **kwargs):
    """Variance over `dim` (all when None); unbiased (correction=1) by default, as in PyTorch:
    `var(x, dim, unbiased, keepdim)`, or `correction=0` / `unbiased=False` for the population
    variance.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0, 4.0])
    >>> round(cr.var(x).item(), 4), cr.var(x, unbiased=False).item()
    (1.6667, 1.25)
    """
    return _variance(composites.var, x, args, kwargs)


def std(x, *args, **kwargs):
    """Standard deviation, √var, with var's arguments (unbiased by default, as in PyTorch).

    >>> import chainrule as cr
    >>> cr.std(cr.tensor([1.0, 3.0]), unbiased=False).item()
    1.0
    """
    return _variance(composites.std, x, args, kwargs)


def _truth(fn, x, axis, keepdims):
    x = as_tensor(x)
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, fn.__name__)
    return compute(_truth_of, (x,), test=fn, axis=axis, keepdims=bool(keepdims))


def _truth_of(x, test, axis, keepdims):
    return _array(test(x, axis=axis, keepdims=keepdims))


@torch_keywords
def all(x, axis=None, keepdims=False):
    """True where every value (over `axis`/`dim`, or all) is non-zero: a bool tensor, 0-d
    without an axis, as in PyTorch (`if x.all():` works through its truth value).

    >>> import chainrule as cr
    >>> cr.all(cr.tensor([1.0, 0.0]))
    tensor(False)
    """
    return _truth(np.all, x, axis, keepdims)


@torch_keywords
def any(x, axis=None, keepdims=False):
    """True where some value (over `axis`/`dim`, or all) is non-zero: a bool tensor.

    >>> import chainrule as cr
    >>> cr.any(cr.tensor([[1.0, 0.0], [0.0, 0.0]]), dim=1).tolist()
    [True, False]
    """
    return _truth(np.any, x, axis, keepdims)
