"""Capture: run a model once with the graph recording, and keep what export needs.

A trace is the recorded graph of one eval-mode forward: the primitive nodes in order (every
node after the nodes that feed it), the input and output tensors, and for each node the layer
(module) whose forward was running when it was recorded, for error messages.

Export runs the model more than once: on the user's inputs (trace 0, the one written), and
on other inputs derived from them, one per dynamic axis with that axis one longer (or, with
no dynamic axes, one of the same shapes). The same Python code records the same sequence of
primitives each time unless it branches on values or sizes; comparing the traces node by
node tells which parameters of the graph (reshape targets, constants) follow a dynamic size
and which depend on the input values, which a static graph cannot follow.
"""
from .. import backend
from ..autograd import toposort
from ..errors import ExportError
from ..grad_mode import enable_grad
from ..ops import registry
from ..tensor import Tensor

np = backend.np


class Trace:
    """One recorded forward: nodes (inputs first), inputs, outputs, node -> module."""

    def __init__(self, inputs, outputs, nodes, modules):
        self.inputs = inputs        # Tensors, one per graph input
        self.outputs = outputs      # Tensors, the model's outputs flattened
        self.nodes = nodes          # recorded Nodes, every node after those feeding it
        self.index = {node: i for i, node in enumerate(nodes)}
        self.modules = modules      # Node -> the innermost Module running when it was made
        self._input_ids = {id(t): j for j, t in enumerate(inputs)}

    def input_position(self, tensor):
        """j when `tensor` is graph input j (the very tensor), else None."""
        j = self._input_ids.get(id(tensor))
        return j if j is not None and self.inputs[j] is tensor else None


def flatten_outputs(out, where="the model's output"):
    """The Tensors of a model's output: a Tensor, or tuples/lists of them (nested)."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flatten_outputs(item, where)]
    raise ExportError(f"export: {where} contains a {type(out).__name__}; export writes "
                      "models whose forward returns a Tensor or (nested) tuples of Tensors.")


class Slot:
    """Where graph input `index` goes in the arguments."""

    def __init__(self, index):
        self.index = index


def _fill(template, inputs):
    if isinstance(template, Slot):
        return inputs[template.index]
    if isinstance(template, (tuple, list)):
        return type(template)(_fill(a, inputs) for a in template)
    return template


def run(model, arrays, template):
    """Run `model` on fresh tensors around `arrays` (one per graph input, put where the
    Slots of the arguments `template` say) and record the graph."""
    inputs = []
    for a in arrays:
        t = Tensor._wrap(a)
        if backend.is_float(a.dtype):
            t.requires_grad = True      # a leaf: the graph records from it
        inputs.append(t)
    args = _fill(template, inputs)
    stack, modules = [], {}

    def remember(node):
        modules[node] = stack[-1] if stack else None

    wrapped = _wrap_forwards(model, stack)
    registry.node_hooks.append(remember)
    try:
        with enable_grad():
            out = model(*args)
    finally:
        registry.node_hooks.remove(remember)
        for m, had, own in wrapped:
            if had:
                m.__dict__["forward"] = own
            else:
                m.__dict__.pop("forward", None)
    outputs = flatten_outputs(out)
    roots = [t._node for t in outputs if t._node is not None and t.requires_grad]
    nodes = toposort(roots)
    nodes.reverse()
    return Trace(inputs, outputs, nodes, modules)


def _wrap_forwards(model, stack):
    """Make every module's forward push itself on `stack` while it runs (an instance
    attribute shadowing the class's method; undone by the caller)."""
    wrapped = []
    for m in model.modules():
        had = "forward" in m.__dict__
        own = m.__dict__.get("forward")
        bound = m.forward

        def forward(*args, _m=m, _f=bound, **kwargs):
            stack.append(_m)
            try:
                return _f(*args, **kwargs)
            finally:
                stack.pop()
        m.__dict__["forward"] = forward
        wrapped.append((m, had, own))
    return wrapped


def other_inputs(arrays, sizes, rng):
    """Inputs for a second trace: `sizes` maps (input, axis) -> new length. Along a resized
    axis, entries are drawn from the original ones (all of them, shuffled, then repeats);
    then every input's entries are shuffled as a whole (the same values in other places: a
    valid token stays a valid token, a positive input stays positive) and float ones are
    scaled by 1 ± 1% noise, so no value-derived constant is likely to come out the same."""
    out = []
    for j, a in enumerate(arrays):
        for (k, axis), n in sizes.items():
            if k == j:
                length = a.shape[axis]
                pick = np.concatenate([rng.permutation(length),
                                       rng.integers(0, length, max(0, n - length))])[:n]
                a = np.take(a, pick, axis=axis)
        flat = a.reshape(-1)
        a = flat[rng.permutation(flat.size)].reshape(a.shape)
        if backend.is_float(a.dtype):
            a = (a * (1 + 0.01 * rng.standard_normal(a.shape))).astype(a.dtype)
        out.append(np.ascontiguousarray(a))
    return out


def layer_name(trace, node):
    """How errors name the layer that recorded `node`."""
    module = trace.modules.get(node)
    if module is None:
        return "the model's forward"
    return module.layer_path()


def same(a, b):
    """Whether two parameter values (arrays, tuples, slices, scalars, dtypes) are equal."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return (a.shape == b.shape and a.dtype == b.dtype and
                bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b) and
                all(same(x, y) for x, y in zip(a, b)))
    if isinstance(a, slice):
        return isinstance(b, slice) and same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False
