"""Constants computed from the input outside the graph, and the ONNX computations that give
them.

Some forwards read an input's values with NumPy, where the graph does not see it: softmax,
log_softmax and logsumexp subtract the row maximum as a constant (so exp cannot overflow),
softplus shifts by max(x, 0), leaky_relu's `where` takes the mask x > 0, the general max-pool
picks each window's first maximum with a one-hot mask, Embedding(padding_idx) masks the
padding tokens, and a recurrent layer starts from zeros shaped like the batch. Such a constant
differs between the traces (see trace.py). Each recipe here recognises one kind, by value,
from a tensor recorded nearby (the node's inputs and their producers, a few steps up, and the
graph inputs), and writes the ONNX operators that compute it. A recipe is accepted only if it
gives the constant exactly in every trace. Anything else is an ExportError naming the layer.
"""
from .. import backend
from ..errors import ExportError

np = backend.np

DEPTH = 4   # how many producers up the graph a recipe looks for its source tensor


def explain(view, arrays, what):
    """The ONNX value that computes the constant given (per trace) by `arrays`."""
    b = view.b
    for source, get in _sources(view):
        per_trace = [get(r) for r in range(len(b.traces))]
        for recipe in RECIPES:
            found = _try(recipe, arrays, per_trace, view)
            if found is not None:
                return recipe[1](b, source(), found, per_trace[0])
    value = _uniform(view, arrays)
    if value is not None:
        return value
    raise ExportError(
        f"export: {view.name} in {view.layer}: {what} is a constant computed from the input "
        "values outside the recorded graph (through .data, .numpy() or a NumPy call), and it "
        "is not one export knows how to compute in ONNX; the written graph would only be right "
        "for the example input. Compute it with chainrule operations on tensors that require "
        "grad, so that the graph records it.")


def _try(recipe, arrays, per_trace, view):
    match = recipe[0]
    found = match(arrays[0], per_trace[0], view)
    if found is None:
        return None
    for c, t in zip(arrays[1:], per_trace[1:]):
        if match(c, t, view, found) is None:
            return None
    return found


def _sources(view):
    """(ONNX value maker, per-trace array getter) for tensors near the node, nearest first:
    recorded outputs up the graph, then the graph inputs."""
    b = view.b
    seen, frontier = set(), [view]
    for _ in range(DEPTH):
        nxt = []
        for v in frontier:
            for k in range(v.n_inputs):
                t = v.node.inputs[k]
                p = v.producer(k)
                if p is not None:
                    if p.index not in seen:
                        seen.add(p.index)
                        nxt.append(p)
                        yield ((lambda p=p: b.values[p.index]),
                               (lambda r, p=p: b.traces[r].nodes[p.index].out))
                elif b.traces[0].input_position(t) is not None:
                    j = b.traces[0].input_position(t)
                    if ("in", j) not in seen:
                        seen.add(("in", j))
                        yield ((lambda j=j: b.input_names[j]),
                               (lambda r, j=j: b.traces[r].inputs[j]._data))
        frontier = nxt
    for j in range(len(b.input_names)):
        if ("in", j) not in seen:
            yield ((lambda j=j: b.input_names[j]),
                   (lambda r, j=j: b.traces[r].inputs[j]._data))


def _uniform(view, arrays):
    """A constant with one value everywhere whose shape follows dynamic axes (a zero state
    shaped like the batch): Expand of that value."""
    first = arrays[0]
    if first.size == 0 or first.ndim == 0:
        return None
    v = first.reshape(-1)[0]
    for a in arrays:
        if a.size == 0 or a.ndim != first.ndim or a.dtype != first.dtype or not (a == v).all():
            return None
    if all(a.shape == first.shape for a in arrays):
        return None     # same shape in every trace: values differ elsewhere, not this recipe
    b = view.b
    dims = b.dims([a.shape for a in arrays], f"the shape of a constant in {view.name} in "
                                             f"{view.layer}")
    return b.op("Expand", [b.scalar(v, first.dtype), b.shape_value(dims, infer=False)])


# ---- recipes: (match(c, t, view[, found]) -> details or None,
#                emit(builder, t's ONNX value, details, t's array in trace 0)) ----

def _same_values(c, want):
    return (c.shape == want.shape and c.dtype == want.dtype and
            bool(np.array_equal(c, want, equal_nan=c.dtype.kind == "f")))


def _floats(c, t):
    return c.dtype.kind == "f" and t.dtype.kind == "f" and c.dtype == t.dtype


def _match_identity(c, t, view, found=None):
    return True if _floats(c, t) and _same_values(c, t) else None


def _match_shift(c, t, view, found=None):
    """c = the finite maximum of t over some axes, kept (softmax's and logsumexp's shift)."""
    if not _floats(c, t) or c.ndim != t.ndim:
        return None
    if found is None:
        if any(cn not in (1, tn) for cn, tn in zip(c.shape, t.shape)):
            return None
        axes = tuple(i for i, (cn, tn) in enumerate(zip(c.shape, t.shape)) if cn == 1 != tn)
        if not axes:
            return None
    else:
        axes = found
    if t.size == 0:
        return None
    m = np.max(t, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(t.dtype, copy=False)
    return axes if _same_values(c, m) else None


def _emit_shift(b, t, axes, array):
    m = b.reduce("ReduceMax", t, axes, keepdims=True)
    zero = b.scalar(0, array.dtype)
    return b.op("Where", [b.op("IsInf", [m]), zero, m])


def _match_relu(c, t, view, found=None):
    return True if _floats(c, t) and _same_values(c, np.maximum(t, 0)) else None


def _match_exp_neg_relu(c, t, view, found=None):
    """softplus's exp(-max(x, 0))."""
    return True if _floats(c, t) and _same_values(c, np.exp(-np.maximum(t, 0))) else None


_COMPARISONS = [("Greater", np.greater), ("GreaterOrEqual", np.greater_equal),
                ("Less", np.less), ("LessOrEqual", np.less_equal), ("Equal", np.equal)]


def _match_sign_mask(c, t, view, found=None):
    """c = t compared with 0 (leaky_relu's x > 0, std's var == 0)."""
    if c.dtype != bool or t.dtype.kind not in "fiu" or c.shape != t.shape:
        return None
    for i, (name, fn) in enumerate(_COMPARISONS):
        if found is not None and found != i:
            continue
        if _same_values(c, fn(t, 0)):
            return i
    return None


def _emit_sign_mask(b, t, i, array):
    return b.op(_COMPARISONS[i][0], [t, b.scalar(0, array.dtype)])


def _match_first_max(c, t, view, found=None):
    """c = one-hot of each row's first maximum along the last axis (the general max-pool)."""
    if c.dtype != bool or t.dtype.kind != "f" or c.shape != t.shape or t.ndim == 0 or \
            t.shape[-1] == 0:
        return None
    want = np.arange(t.shape[-1]) == np.argmax(t, axis=-1)[..., None]
    return True if _same_values(c, want) else None


def _emit_first_max(b, t, _, array):
    arg = b.op("ArgMax", [t], axis=-1, keepdims=1, select_last_index=0)
    return b.op("Equal", [arg, b.ints(range(array.shape[-1]))])


def _match_token(c, t, view, found=None):
    """c = (t == k) or (t != k) for integer t and one k, maybe with a trailing axis of 1 and
    as 0/1 numbers (Embedding's padding mask; a mask of the real tokens)."""
    if t.dtype.kind not in "iu" or (found is not None and c.dtype != found[3]):
        return None
    c_dtype = c.dtype
    if c.dtype != bool:
        if c.size == 0 or not np.isin(c, (0, 1)).all():
            return None
        c = c.astype(bool)
    if c.shape == t.shape + (1,):
        c = c[..., 0]
        expand = True
    elif c.shape == t.shape:
        expand = False
    else:
        return None
    if found is not None:
        k, _, negate, _ = found
    else:
        negate = bool(c.mean() > 0.5)
        hits = np.unique(t[~c if negate else c])
        if len(hits) > 1:
            return None
        if len(hits) == 1:
            k = int(hits[0])
        else:
            layer = view.b.traces[0].modules.get(view.node)
            k = getattr(layer, "padding_idx", None)
            if k is None:
                return None
    want = (t != k) if negate else (t == k)
    return (k, expand, negate, c_dtype) if _same_values(c, want) else None


def _emit_token(b, t, found, array):
    from .graph import onnx_dtype
    k, expand, negate, dtype = found
    mask = b.op("Equal", [t, b.scalar(k, array.dtype)])
    if negate:
        mask = b.op("Not", [mask])
    if dtype != bool:
        mask = b.op("Cast", [mask], to=onnx_dtype(dtype))
    return b.unsqueeze(mask, [-1]) if expand else mask


def _match_cast(c, t, view, found=None):
    """c = t converted to another dtype (an integer or bool input made float)."""
    if c.dtype == t.dtype or c.shape != t.shape or (found is not None and c.dtype != found):
        return None
    return c.dtype if _same_values(c, t.astype(c.dtype)) else None


def _emit_cast(b, t, dtype, array):
    from .graph import onnx_dtype
    return b.op("Cast", [t], to=onnx_dtype(dtype))


RECIPES = [
    (_match_identity, lambda b, t, _, a: t),
    (_match_shift, _emit_shift),
    (_match_relu, lambda b, t, _, a: b.op("Relu", [t])),
    (_match_exp_neg_relu, lambda b, t, _, a: b.op("Exp", [b.op("Neg", [b.op("Relu", [t])])])),
    (_match_sign_mask, _emit_sign_mask),
    (_match_first_max, _emit_first_max),
    (_match_token, _emit_token),
    (_match_cast, _emit_cast),
]
