"""The registry of primitives, and `apply`, which runs one and records it in the graph.

Format of a registry entry (one `Primitive(...)` call per primitive, in the ops modules):

    name      the op's name as errors, `explain` and the tests show it
    forward   f(*arrays, **params) -> array: NumPy only, no Tensors
    vjps      one rule per tensor input, in order; a rule is
              rule(g, y, *inputs, **params) -> Tensor, the input's gradient given the output's
              gradient g and output y (all Tensors), written with Tensor ops so it can itself be
              differentiated (grad of grad); None means "no gradient flows to this input".
              The engine sums the result back to the input's shape, so rules never handle
              broadcasting. A variadic primitive (concatenate) gives a function i -> rule.
    formula   how `explain` writes the forward, with inputs named as in the rules (x; a, b)
    derivs    per input, the local derivative ∂y/∂input as `explain` prints it, in the same names
              (y is the output)
    hint      what to tell a user whose inputs the forward rejected

Optional keywords:

    array_vjps  first-order twins of the vjps on plain arrays, one per input (None where the
                Tensor rule is None): rule(g, y, *input_arrays, **params) -> ndarray, the same
                math, written in the entry directly under the Tensor rule each one mirrors.
                The engine uses them for first-order backward (create_graph=False): no Tensor,
                no `apply` per step of the VJP (measured: bench/NOTES.md). The Tensor rules
                stay the definition: replacing them (a test's or a user's patch) switches the
                twins off until the original rules are back; tests/test_array_vjps.py
                compares twins and rules on every sample.
    scatter     params -> a basic index (or None), when the first-order gradient is g put at
                that index of zeros shaped like the input (getitem): the engine then adds g
                into one buffer for the input (autograd._scatter_into)

Conventions at non-differentiable points follow PyTorch and are written at each rule as NOTE.
"""
import itertools

import numpy as np

from .. import backend
from ..autograd import FREEZE_EVERY, Node, grad_mode, graph_gc
from ..errors import ShapeError
from ..tensor import Tensor

_wrap = Tensor._wrap
_recorded = itertools.count(1)   # nodes recorded, for autograd.graph_gc

REGISTRY = {}


class Primitive:
    __slots__ = ("name", "forward", "_vjps", "formula", "derivs", "hint", "variadic", "fast",
                 "_twins", "scatter")

    def __init__(self, name, forward, vjps, formula, derivs, hint="", *, array_vjps=None,
                 scatter=None):
        self.name = name
        self.forward = forward
        self.variadic = callable(vjps)
        rules = vjps if self.variadic else tuple(vjps)
        self._twins = None if array_vjps is None else (rules, _twins(name, rules, array_vjps))
        self.scatter = scatter
        self.vjps = rules       # sets `fast`: the twins, while these rules are in place
        self.formula = formula
        self.derivs = tuple(derivs)
        self.hint = hint
        if name in REGISTRY:
            raise ValueError(f"primitive {name!r} registered twice")
        REGISTRY[name] = self

    @property
    def vjps(self):
        return self._vjps

    @vjps.setter
    def vjps(self, rules):
        # Other Tensor rules (a test's or a user's patch) make the array twins stale: the
        # engine then runs exactly the rules the primitive now has; restoring the original
        # rules brings the twins back.
        self._vjps = rules
        twins = self._twins
        self.fast = twins[1] if twins is not None and twins[0] is rules else None

    def vjp_rule(self, i):
        return self.vjps(i) if self.variadic else self.vjps[i]

    def __repr__(self):
        return f"<primitive {self.name}>"


def _twins(name, rules, twins):
    """The array twins as a tuple, one per Tensor rule."""
    twins = tuple(twins)
    if callable(rules) or len(twins) != len(rules):
        raise ValueError(f"primitive {name!r}: array_vjps needs one rule per input "
                         f"({'variadic' if callable(rules) else len(rules)}), not {len(twins)}")
    return twins


# Set by detect_anomaly: called with each new node (to remember where it was made).
node_hooks = []


def apply(prim, inputs, **params):
    """Run `prim` on the arrays of `inputs` (Tensors); record a Node when a grad is needed."""
    # The hot path of every op: no list building for the common arities, one Tensor made.
    try:
        if len(inputs) == 2:
            a, b = inputs
            out = prim.forward(a.data, b.data, **params)
            needs = a.requires_grad or b.requires_grad
        elif len(inputs) == 1:
            a = inputs[0]
            out = prim.forward(a.data, **params)
            needs = a.requires_grad
        else:
            out = prim.forward(*[t.data for t in inputs], **params)
            needs = any(t.requires_grad for t in inputs)
    except (ValueError, IndexError, TypeError) as exc:
        raise _explain_failure(prim, inputs, params, exc) from exc
    result = _wrap(out)
    if needs and grad_mode.enabled:
        result.requires_grad = True
        node = result._node = Node(prim, inputs, params, result.data)
        if not next(_recorded) % FREEZE_EVERY:
            graph_gc.recorded()
        if node_hooks:
            for hook in node_hooks:
                hook(node)
    return result


def _explain_failure(prim, inputs, params, exc):
    from ..errors import IndexError_
    shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in inputs)
    extra = "".join(f", {k}={v!r}" for k, v in params.items() if k not in ("index", "saved"))
    msg = f"{prim.name}: inputs {shapes}{extra}: {exc}."
    if prim.hint:
        msg += f" {prim.hint}"
    if isinstance(exc, IndexError):
        return IndexError_(msg)
    if isinstance(exc, TypeError):
        from ..errors import DTypeError
        return DTypeError(msg)
    return ShapeError(msg)


def as_tensor(x, like=None):
    """Lift a Python scalar or array to a Tensor; scalars take `like`'s dtype (float32 stays
    float32)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool, np.generic)):
        dtype = like.data.dtype
        if dtype.kind == "f" and type(x) in (float, int) and x != 0 and x == x:
            return _constant(x, dtype)
        return _wrap(backend.scalar_array(x, dtype))
    return _wrap(backend.to_array(x))


# Python scalars mixed with float tensors (x * 0.5, y ** 2), kept as shared read-only 0-d
# tensors: one less array and one less GC-tracked object per op in long graphs. Zero is not
# cached (0.0 and -0.0 compare equal but differ under division), nor nan (never equal).
_CONSTANTS = {}


def _constant(x, dtype):
    key = (x, dtype)
    t = _CONSTANTS.get(key)
    if t is None:
        if len(_CONSTANTS) >= 1024:
            _CONSTANTS.clear()
        array = np.asarray(x, dtype=dtype)
        array.flags.writeable = False
        t = _CONSTANTS[key] = _wrap(array)
    return t


def lift_pair(a, b):
    if type(a) is not Tensor and not isinstance(a, Tensor):
        a = as_tensor(a, b)
    elif type(b) is not Tensor and not isinstance(b, Tensor):
        b = as_tensor(b, a)
    ka, kb = a.data.dtype.kind, b.data.dtype.kind
    if ka != kb and (ka == "f" or kb == "f"):
        # NOTE: an integer or bool operand takes the float operand's dtype (PyTorch), so float32
        # stays float32 beside an int tensor (NumPy alone would promote to float64).
        if ka == "f":
            b = _wrap(b.data.astype(a.data.dtype))
        else:
            a = _wrap(a.data.astype(b.data.dtype))
    return a, b
