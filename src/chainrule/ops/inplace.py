"""In-place updates of tensors in the graph, recorded as PyTorch records them.

`x += y` on a tensor that takes part in the graph (a non-leaf, or any tensor when y requires
grad) computes the new value with the matching recorded operation (`add(old, y)`), writes it
into x's memory (so every view and alias of x sees it), bumps x's version counter, and moves x
onto the new node (PyTorch's rebase_history): x keeps its identity, its old role in the graph
is taken by a snapshot (sharing x's memory, or a copy where the new node needs the old
values), and the engine hands nodes recorded before the update that snapshot
(`autograd.note_rebase`), so they differentiate the value they saw. An update of a view (a
slice, a reshape, a transpose of x) is recorded on its base, as PyTorch's CopySlices: the base
becomes "the old base with the view's region replaced", and the view is re-derived from it.

No copy is made for the graph where the new node does not read the old values (as in PyTorch:
a buffer filled row by row keeps one array). For `explain`, the values a node computed are
kept when an update overwrites them (`value_at_forward`), so its forward pass shows them as
they were; only for tensors of up to FORWARD_COPY_MAX entries (learners' graphs), so that a
large buffer filled row by row is not copied at every row: a larger one shows as it is now.

What PyTorch refuses is refused in its words: an in-place update of a leaf that requires grad,
or of a view of one, outside no_grad. A node that read the values an update overwrote raises
at backward (the version counters); one that did not (add, a slice) differentiates as before.
"""
import weakref

from .. import autograd, backend
from ..errors import GraphError
from ..tensor import Tensor
from .registry import apply
from .function import Function

np = backend.np

FORWARD_COPY_MAX = 4096
# node -> the output it computed, copied before an in-place update overwrote it (its output
# array is the updated tensor's memory); dropped with the node.
_OVERWRITTEN = weakref.WeakKeyDictionary()


def value_at_forward(node):
    """The output `node` computed, even where an in-place update has overwritten its memory
    since (for outputs of up to FORWARD_COPY_MAX entries; a larger one as it is now)."""
    return _OVERWRITTEN.get(node, node.out)


def _keep_forward_value(node, array):
    if node is not None and array.size <= FORWARD_COPY_MAX and node not in _OVERWRITTEN:
        _OVERWRITTEN[node] = array.copy()


def record(t, recorded, other, op, needs_old=False):
    """Record the in-place update of `t` whose new value is `recorded(old, other)` (a
    recorded operation on Tensors). `needs_old`: the new node reads the old values (so the
    snapshot is a copy). Returns t."""
    if t._node is None and t.requires_grad:
        raise GraphError(
            f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
            f"(PyTorch's words): this tensor of shape {t.shape} is a leaf of the graph, and "
            "the graph needs its old value. Write x = x + y (out of place), or update it inside "
            "cr.no_grad() (as optimizers do).")
    view = t._view
    if view is not None and (view[0].requires_grad or _requires_grad(other)):
        base, chain = view
        if base._node is None and base.requires_grad:
            raise GraphError(
                f"{op}: a view of a leaf Variable that requires grad is being used in an "
                f"in-place operation (PyTorch's words): this tensor of shape {t.shape} looks "
                f"into a leaf of shape {base.shape} that requires grad. Update it out of place, "
                "or inside cr.no_grad().")
        return _record_on_view(t, base, chain, recorded, other, op, needs_old)
    old = _snapshot(t, needs_old)
    new = _fitted(recorded(old, other), t)
    _write(t, new)
    _rebase(t, new, old)
    return t


def _requires_grad(other):
    return isinstance(other, Tensor) and other.requires_grad


def _snapshot(t, copy):
    """A tensor that takes t's place in the graph as it was: t's node and flags, t's memory
    (or a copy of it), a version counter of its own."""
    s = Tensor._wrap(t._data.copy() if copy else t._data)
    s._node, s.requires_grad, s.name = t._node, t.requires_grad, t.name
    return s


def _fitted(new, t):
    """The recorded new value, cast to t's dtype (the update writes into t's memory)."""
    if new.dtype != t.dtype:
        new = new.astype(t.dtype)
    return new


def _write(t, new):
    _keep_forward_value(t._node, t._data)
    try:
        np.copyto(t._data, new._data, casting="unsafe")
    except ValueError as exc:
        from ..errors import ShapeError
        raise ShapeError(f"in-place update: the result has shape {new.shape}, which cannot be "
                         f"written into this tensor of shape {t.shape} ({exc}). The operand "
                         "must broadcast to the tensor's shape.") from exc
    t._counter()[0] += 1


def _rebase(t, new, old):
    """Move t onto the node that made `new` (whose values t now holds)."""
    node = new._node
    previous = t._node
    t._node = node
    t.requires_grad = new.requires_grad
    if node is not None:
        node.out = t._data          # the values live in t's memory; the new array is dropped
        if node.watched:            # it saved its output: watch t's memory from now on
            node.watched = tuple((t._vc, t._vc[0], w) if w == -1 else (vc, v, w)
                                 for vc, v, w in node.watched)
        if previous is not None and previous.retained is not None:
            node.retained, previous.retained = previous.retained, None
    autograd.note_rebase(t, old)


def _record_on_view(t, base, chain, recorded, other, op, needs_old):
    """An in-place update of the view `t` of `base` (made by `chain`), recorded on the base."""
    base_old = _snapshot(base, False)
    old_view = _view_of(base_old, chain)
    if needs_old:
        old_view = old_view.clone()
    else:   # the view looks into the memory about to be written
        _keep_forward_value(old_view._node, old_view._data)
    new_view = _fitted(recorded(old_view, other), t)
    new_base = CopySlices.apply(base_old, new_view, chain)
    _write(base, new_base)
    _rebase(base, new_base, base_old)
    again = _view_of(base, chain)
    t._node, t.requires_grad = again._node, again.requires_grad
    if t._node is not None:
        t._node.out = t._data
    return t


def _view_of(x, chain):
    for prim, params in chain:
        x = apply(prim, (x,), **params)
    return x


def _view_array(a, chain):
    for prim, params in chain:
        a = prim.forward(a, **params)
    return a


class CopySlices(Function):
    """The base with the region a view of it shows replaced by new values (PyTorch's name)."""
    formula = "base with its view replaced by values"
    derivs = ("1 outside the view", "1 inside the view")

    @staticmethod
    def forward(ctx, base, values, chain):
        ctx.chain, ctx.shape, ctx.dtype = chain, base.shape, base.dtype
        out = base._data.copy()
        _view_array(out, chain)[...] = values._data
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, g):
        keep = backend.xp_of(g._data).ones(ctx.shape, dtype=ctx.dtype)
        _view_array(keep, ctx.chain)[...] = 0
        return g * Tensor._wrap(keep), _view_of(g, ctx.chain), None


class IndexPut(Function):
    """old with old[index] replaced by values (what `x[index] = v` records)."""
    formula = "old with values at [index]"
    derivs = ("1 outside index", "1 at index")

    @staticmethod
    def forward(ctx, old, values, index):
        ctx.index, ctx.shape, ctx.dtype = index, old.shape, old.dtype
        out = old._data.copy()
        out[index] = values._data
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, g):
        keep = backend.xp_of(g._data).ones(ctx.shape, dtype=ctx.dtype)
        keep[ctx.index] = 0
        return g * Tensor._wrap(keep), g[ctx.index], None


class Overwrite(Function):
    """Every value replaced by `values` (broadcast): copy_, fill_, zero_ and random fills."""
    formula = "values (old overwritten)"
    derivs = ("0", "1")

    @staticmethod
    def forward(ctx, old, values):
        ctx.shape, ctx.dtype = old.shape, old.dtype
        return Tensor._wrap(np.broadcast_to(values._data, old.shape).astype(old.dtype))

    @staticmethod
    def backward(ctx, g):
        return Tensor._wrap(backend.xp_of(g._data).zeros(ctx.shape, dtype=ctx.dtype)), g


def _as_tensor(value, like):
    """A value written into `like` as a tensor on like's device."""
    if isinstance(value, Tensor):
        return value
    xp = backend.xp_of(like._data)
    return Tensor._wrap(xp.asarray(value, dtype=like.dtype) if np.ndim(value) == 0
                        else xp.asarray(value))


def index_put(old, values, index):
    """`old` with `old[index] = values`, recorded."""
    return IndexPut.apply(old, _as_tensor(values, old), index)


def overwrite(old, values):
    """`values` broadcast to `old`'s shape and dtype, recorded (zero gradient to old)."""
    return Overwrite.apply(old, _as_tensor(values, old))
