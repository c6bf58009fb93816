"""Functions that make new tensors (PyTorch's names and defaults)."""
import numpy as np

from . import backend
from .errors import DTypeError, ShapeError
from .tensor import Tensor


def _shape(size, op="tensor"):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise DTypeError(f"{op}: size {tuple(size)!r} holds a {type(n).__name__}; sizes are "
                             "ints, e.g. cr.zeros(2, 3) or cr.zeros((2, 3)).")
        if n < 0:
            raise ShapeError(f"{op}: size {tuple(size)} has a negative dimension; every "
                             "dimension must be >= 0.")
    return tuple(size)


def _make(array, requires_grad, name=None):
    t = Tensor._wrap(array)
    t.name = name
    if requires_grad:
        t.requires_grad_()
    return t


def _dtype(dtype):
    if dtype is None:
        return backend.get_default_dtype()
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise DTypeError(f"{dtype!r} is not a dtype ({exc}); use cr.float32, cr.float64, "
                         "cr.int64 or another NumPy dtype.") from exc


def tensor(data, dtype=None, requires_grad=False, name=None):
    """A new tensor from `data`. Python floats become float32 (the default dtype), NumPy arrays
    keep their dtype; `name` is what `explain` calls it.

    >>> import chainrule as cr
    >>> cr.tensor([1.0, 2.0]).dtype
    dtype('float32')
    """
    if isinstance(data, Tensor):
        data = data.data
    return Tensor(np.array(backend.to_array(data, dtype)), requires_grad=requires_grad, name=name)


def zeros(*size, dtype=None, requires_grad=False):
    """A tensor of zeros of shape `size` (ints, or one tuple), in the default dtype unless `dtype`.

    >>> import chainrule as cr
    >>> cr.zeros(2, 3).shape
    (2, 3)
    >>> cr.zeros((2,), dtype=cr.float64).tolist()
    [0.0, 0.0]
    """
    return _make(np.zeros(_shape(size, "zeros"), _dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    """A tensor of ones of shape `size` (ints, or one tuple), in the default dtype unless `dtype`.

    >>> import chainrule as cr
    >>> cr.ones(2, requires_grad=True).tolist()
    [1.0, 1.0]
    """
    return _make(np.ones(_shape(size, "ones"), _dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    """A tensor of shape `size` filled with the single number `fill_value`.

    >>> import chainrule as cr
    >>> cr.full((2, 2), 7.0).tolist()
    [[7.0, 7.0], [7.0, 7.0]]
    """
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.data
    size, fill_value = _shape((size,), "full"), backend.to_array(fill_value)
    if fill_value.ndim:
        raise ShapeError(f"full: fill_value must be a single number, got an array of shape "
                         f"{fill_value.shape}; use cr.tensor(...).expand({size}) to repeat one.")
    return _make(np.full(size, fill_value, _dtype(dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    """Zeros with the shape and (unless `dtype` is given) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.zeros_like(cr.tensor([[1.0, 2.0]])).tolist()
    [[0.0, 0.0]]
    """
    return _make(np.zeros(t.shape, dtype or t.dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    """Ones with the shape and (unless `dtype` is given) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.ones_like(cr.tensor([5, 6])).tolist()
    [1, 1]
    """
    return _make(np.ones(t.shape, dtype or t.dtype), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like PyTorch: integers give int64, any float gives the default float dtype.

    >>> import chainrule as cr
    >>> cr.arange(4).tolist()
    [0, 1, 2, 3]
    >>> cr.arange(0.0, 1.0, 0.25).tolist()
    [0.0, 0.25, 0.5, 0.75]
    """
    if end is None:
        start, end = 0, start
    if dtype is None and any(isinstance(v, float) for v in (start, end, step)):
        dtype = backend.get_default_dtype()
    return _make(np.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    """`steps` evenly spaced values from `start` to `end`, both included.

    >>> import chainrule as cr
    >>> cr.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return _make(np.linspace(start, end, steps, dtype=_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    """The n x m identity matrix (m defaults to n).

    >>> import chainrule as cr
    >>> cr.eye(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    return _make(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    """Uniform on [0, 1), from the generator that `manual_seed` seeds.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> [round(v, 4) for v in cr.rand(3).tolist()]
    [0.637, 0.2698, 0.041]
    """
    return _make(backend.rng().random(_shape(size, "rand")).astype(_dtype(dtype)), requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    """Standard normal, from the generator that `manual_seed` seeds.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> [round(v, 4) for v in cr.randn(3).tolist()]
    [0.1257, -0.1321, 0.6404]
    """
    return _make(backend.rng().standard_normal(_shape(size, "randn")).astype(_dtype(dtype)),
                 requires_grad)


def randint(low, high, size, dtype=None):
    """Random integers in [low, high) (high excluded) of shape `size`, int64 by default.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> cr.randint(0, 10, (5,)).tolist()
    [8, 6, 5, 2, 3]
    """
    size = _shape((size,), "randint")
    if not low < high:
        raise ShapeError(f"randint: low={low} must be below high={high} (high is exclusive).")
    return _make(backend.rng().integers(low, high, size, dtype=dtype or np.int64), False)
