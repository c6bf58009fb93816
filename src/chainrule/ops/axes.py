"""Axis arguments: validated and normalised once, for reductions and shape functions."""
import builtins

from .. import backend
from ..errors import DTypeError, ShapeError

np = backend.np

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
