"""Shape primitives (they move values, never change them) and the shape helpers built on them.

Their VJPs are the inverse movement: reshape back, transpose back, sum a broadcast back,
scatter an indexed slice back (adding where an index repeats).
"""
import itertools

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor
from ..autograd import sum_to
from .axes import normalize_axis
from .registry import Primitive, apply, as_tensor, guard

np = backend.np
_MOVES = dict(derivs=["1 (each value moves)"], saves=(), linear=True)

RESHAPE = Primitive(
    "reshape", lambda x, shape: x.reshape(shape), [lambda g, y, x, shape: g.reshape(x.shape)],
    formula="reshape(x)", hint="The new shape must hold the same number of elements (use -1 "
    "for one inferred dimension).", **_MOVES, view=True)
TRANSPOSE = Primitive(
    "transpose", lambda x, axes: np.transpose(x, axes),
    [lambda g, y, x, axes: TRANSPOSE(g, axes=tuple(np.argsort(axes)))],
    formula="transpose(x)", symbol="ᵀ", hint="Give each axis exactly once.", **_MOVES,
    formula_2d="xᵀ", layer_role="transposed", view=True)


BROADCAST = Primitive(
    "expand", lambda x, shape: np.broadcast_to(x, shape),
    [lambda g, y, x, shape: sum_to(g, x.shape)],
    formula="expand(x)", derivs=["1 (summed over copies)"], saves=(), linear=True,
    hint="Only dimensions of size 1 can be expanded, and new dimensions go on the left.",
    view=True)


def _concat_block(params, i):
    """Input i's block of a concatenation's output: it starts at offsets[i], computed once per
    node by `concatenate` (summing the earlier sizes here made k pieces cost O(k²))."""
    offsets = params["offsets"]
    return (slice(None),) * params["axis"] + (slice(offsets[i], offsets[i + 1]),)


def _concat_rule(i):
    def rule(g, y, *inputs, axis, offsets):
        return g[_concat_block({"axis": axis, "offsets": offsets}, i)]
    return rule


CONCATENATE = Primitive(
    "concatenate", lambda *xs, axis, offsets: np.concatenate(xs, axis=axis), _concat_rule,
    formula="concat(x₁, x₂, …)", derivs=["1 (its block)"], saves=(), linear=True,
    block=_concat_block,
    hint="All inputs must have the same shape except along `axis`.")


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis
               for p in parts)


def _scatter_forward(g, index, shape):
    xp = backend.xp_of(g)
    out = xp.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g
    else:
        xp.add.at(out, index, g)  # repeated indices accumulate
    return out


GETITEM = Primitive(
    "getitem", lambda x, index: x[index],
    [lambda g, y, x, index: SCATTER(g, index=index, shape=x.shape)],
    formula="x[index]", derivs=["1 at the picked entries"], saves=(), linear=True,
    algebra="indexing",
    hint="Indices must lie within each dimension (negative ones count from the end).",
    # ... and for a basic index (slices, ints: split's pieces), the engine adds g straight
    # into one buffer for the input instead of a full-size array per piece.
    scatter=lambda params: params["index"] if _is_basic(params["index"]) else None,
    view=True)   # a basic index views the input; an integer array or mask copies
SCATTER = Primitive(
    "scatter_add", _scatter_forward,
    [lambda g, y, x, index, shape: GETITEM(g, index=index)],
    formula="zeros with x added at index", derivs=["1 at index"], saves=(), linear=True)


def _normalize_index(index, x):
    """Tensors and lists become arrays on x's device; boolean masks become integer arrays
    (nonzero), so the backward can scatter with add.at."""
    parts = index if isinstance(index, tuple) else (index,)
    parts = [p._data if isinstance(p, Tensor) else np.asarray(p) if isinstance(p, list) else p
             for p in parts]
    if type(x._data) is not np.ndarray:
        # NOTE: host index arrays (and CPU index tensors) are moved to x's device: PyTorch
        # lets a CPU index tensor index a CUDA tensor.
        parts = [backend.beside(p, x._data) for p in parts]
    masks = [p for p in parts if backend.is_array(p) and p.dtype == bool]
    if masks:
        if any(p.ndim == 0 for p in masks):
            raise ValueError("a 0-d boolean mask selects all or nothing; use x[None] or a "
                             "1-d mask")
        # NumPy checks each mask's shape against the dimensions it covers: on a free view
        xp = backend.xp_of(x._data)
        xp.broadcast_to(xp.zeros((), np.uint8), x.shape)[tuple(parts)]
    out = []
    for p in parts:
        if backend.is_array(p) and p.dtype == bool:
            out.extend(p.nonzero())
        else:
            out.append(p)
    return tuple(out) if isinstance(index, tuple) or len(out) > 1 else out[0]


def getitem(x, index):
    """x[index]: basic slices, integer arrays and boolean masks; repeated indices add up in
    the backward pass."""
    x = as_tensor(x)
    given = index
    try:
        index = _normalize_index(index, x)
    except (ValueError, TypeError, IndexError) as exc:
        from ..errors import IndexError_
        raise IndexError_(f"getitem: index {index!r} for a tensor of shape {x.shape} is not "
                          f"usable ({exc}); index with ints, slices, None, ..., integer arrays "
                          "or a boolean mask shaped like the dimensions it picks from.") from exc
    out = apply(GETITEM, (x,), index=index)
    if out._node is not None and given is not index:     # an index that held tensors
        for k in (given if type(given) is tuple else (given,)):
            if isinstance(k, Tensor):
                guard(out, index=k)
    return out


def reshape(x, shape):
    """The same values in a new shape (one dimension may be -1, inferred); the gradient is
    reshaped back.

    >>> import chainrule as cr
    >>> cr.reshape(cr.arange(6), (2, -1)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    x = as_tensor(x)
    shape = _shape_tuple(shape, "reshape")
    if shape == x.shape:
        return x
    return apply(RESHAPE, (x,), shape=shape)


def transpose(x, axes=None):
    """Permute the axes (reverse them when `axes` is None).

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 2.0, 3.0]])
    >>> cr.transpose(x).shape, cr.transpose(cr.ones(2, 3, 4), (1, 0, 2)).shape
    ((3, 1), (3, 2, 4))
    """
    x = as_tensor(x)
    axes = (tuple(range(x.ndim - 1, -1, -1)) if axes is None else
            tuple(_one_axis(a, x.ndim, "transpose") for a in axes))
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {axes} is not a permutation of the {x.ndim} axes of a "
                         f"tensor of shape {x.shape}; give each axis exactly once.")
    return apply(TRANSPOSE, (x,), axes=axes)


def swapaxes(x, a, b):
    x = as_tensor(x)
    axes = list(range(x.ndim))
    a, b = _one_axis(a, x.ndim, "swapaxes"), _one_axis(b, x.ndim, "swapaxes")
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes)


def expand(x, shape):
    """Broadcast `x` to `shape` without copying (-1 keeps a dimension).

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0], [2.0]], requires_grad=True)
    >>> y = cr.expand(x, (2, 3))
    >>> y.sum().backward()
    >>> y.tolist(), x.grad.tolist()
    ([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], [[3.0], [3.0]])
    """
    x = as_tensor(x)
    shape = _shape_tuple(shape, "expand")
    lead = len(shape) - x.ndim
    if lead < 0 or any(n == -1 for n in shape[:lead]):
        raise ShapeError(f"expand: cannot expand a tensor of shape {x.shape} to {shape}: the "
                         "target needs at least as many dimensions, and -1 (keep) only for "
                         "existing ones. Only dimensions of size 1 can be expanded, and new "
                         "dimensions go on the left.")
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    if shape == x.shape:
        return x
    return apply(BROADCAST, (x,), shape=shape)


def _shape_tuple(shape, op):
    """A shape argument (int or sequence of ints) as a tuple of ints, or a DTypeError."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        return (int(shape),)
    if isinstance(shape, (tuple, list)) and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
        return tuple(int(n) for n in shape)
    from ..errors import DTypeError
    raise DTypeError(f"{op}: shape {shape!r} must be an int or a tuple of ints, e.g. (2, -1).")


def _one_axis(axis, ndim, op):
    """A single axis as a non-negative int; out-of-range axes raise instead of wrapping."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        from ..errors import DTypeError
        raise DTypeError(f"{op}: axis {axis!r} is a {type(axis).__name__}; pass one int axis "
                         f"in [-{ndim}, {ndim}).")
    return normalize_axis(axis, ndim, op)[0]


def sum_to_shape(g, shape):
    """Sum a broadcast gradient back to `shape` (the engine's `sum_to`, on a Tensor)."""
    return g if g.shape == shape else sum_to(as_tensor(g), shape)


def squeeze(x, axis=None):
    """Remove dimensions of size 1: all of them, or those in `axis` (others are kept as they are).

    >>> import chainrule as cr
    >>> cr.squeeze(cr.zeros(1, 3, 1)).shape, cr.squeeze(cr.zeros(1, 3, 1), axis=0).shape
    ((3,), (3, 1))
    """
    x = as_tensor(x)
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = set(normalize_axis(axis, x.ndim, "squeeze"))
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes or n != 1)
    return reshape(x, shape)


def unsqueeze(x, axis):
    """Insert a dimension of size 1 at `axis`.

    >>> import chainrule as cr
    >>> cr.unsqueeze(cr.zeros(3), 0).shape, cr.unsqueeze(cr.zeros(3), -1).shape
    ((1, 3), (3, 1))
    """
    x = as_tensor(x)
    axis = _one_axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the dimensions start_dim..end_dim (default: all) into one.

    >>> import chainrule as cr
    >>> cr.flatten(cr.zeros(2, 3, 4)).shape, cr.flatten(cr.zeros(2, 3, 4), start_dim=1).shape
    ((24,), (2, 12))
    """
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _one_axis(start_dim, x.ndim, "flatten"), _one_axis(end_dim, x.ndim, "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
                         f"tensor of shape {x.shape}; pass start_dim <= end_dim.")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis.

    >>> import chainrule as cr
    >>> a, b = cr.tensor([[1.0, 2.0]]), cr.tensor([[3.0, 4.0]])
    >>> cr.concatenate([a, b]).tolist(), cr.cat([a, b], axis=1).tolist()
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0, 3.0, 4.0]])
    """
    tensors = tuple(as_tensor(t) for t in tensors)
    if not tensors:
        raise ShapeError("concatenate: needs at least one tensor")
    axis = _one_axis(axis, tensors[0].ndim, "concatenate")
    return apply(CONCATENATE, tensors, axis=axis, offsets=_Offsets(tensors, axis))


class _Offsets(tuple):
    """Where each input's block starts along the axis, and the total at the end (k + 1
    numbers); printed short, as error messages and explain show params."""
    __slots__ = ()

    def __new__(cls, tensors, axis):
        sizes = [t.shape[axis] if t.ndim > axis else 0 for t in tensors]
        return super().__new__(cls, itertools.accumulate(sizes, initial=0))

    def __repr__(self):
        return f"<offsets of {len(self) - 1} blocks>"


cat = concatenate


def stack(tensors, axis=0):
    """Join tensors along a new axis.

    >>> import chainrule as cr
    >>> a, b = cr.tensor([1.0, 2.0]), cr.tensor([3.0, 4.0])
    >>> cr.stack([a, b]).tolist(), cr.stack([a, b], axis=1).tolist()
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]])
    """
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    axis = _one_axis(axis, tensors[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis)


def split(x, split_size_or_sections, axis=0):
    """Split into pieces of `split_size` (int) or of the listed sizes (PyTorch's split).

    >>> import chainrule as cr
    >>> [p.tolist() for p in cr.split(cr.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    >>> [p.shape for p in cr.split(cr.zeros(2, 5), [1, 4], axis=1)]
    [(2, 1), (2, 4)]
    """
    x = as_tensor(x)
    if x.ndim == 0:
        raise ShapeError("split: a 0-d tensor has no axis to split; reshape it to (1,) first.")
    axis = _one_axis(axis, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(
            split_size_or_sections, bool):
        if split_size_or_sections <= 0:
            raise ShapeError(f"split: split_size must be a positive int, got "
                             f"{split_size_or_sections} (tensor of shape {x.shape}).")
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = _shape_tuple(split_size_or_sections, "split")
        if any(k < 0 for k in sizes) or sum(sizes) != n:
            raise ShapeError(f"split: sizes {list(sizes)} add up to {sum(sizes)}, but axis "
                             f"{axis} has length {n}; give sizes >= 0 that add up to {n}.")
    pieces, start = [], 0
    for size in sizes:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + size)
        pieces.append(getitem(x, tuple(index)))
        start += size
    return tuple(pieces)
