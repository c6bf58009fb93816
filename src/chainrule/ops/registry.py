"""The registry of primitives, and `apply`, which runs one and records it in the graph.

Format of a registry entry: one `Primitive(...)` per primitive, in the `ops/` modules, every
field named. Everything any part of chainrule knows about a primitive is a field here: the
engine, `explain`, the graph picture, the generated tests and the documentation's table read
the fields, and no module outside `ops/` names a primitive by its string.

    name        the op's name, as errors, `explain` and the tests show it
    forward     f(*arrays, **params) -> array, on the array module only
    vjps        one rule per input, in order: rule(g, y, *inputs, **params) -> the input's
                gradient, given the output's gradient g and the output y. A rule is written
                once, in what arrays and Tensors share (operators, .reshape, .sum(axes,
                keepdims=...), .shape/.ndim/.dtype, indexing, `value(x)` for the raw array, and
                calls of primitives, which compute on arrays and record on Tensors). The engine
                runs it on arrays for a first-order backward and on Tensors under
                create_graph=True (grad of grad). None: no gradient flows to that input. The
                engine sums a result back to the input's shape, so rules never undo
                broadcasting. A variadic primitive (concatenate) gives a function i -> rule.
    inputs      the names its formula and derivatives use for the inputs ("x"; "a", "b"; ...)
    formula     how `explain` writes the forward, in those names; "y = f(x) = ..." style
                definitions after " = " are shown only in full formulas
    derivs      per input, the local derivative ∂y/∂input as `explain` prints it (y: output)
    saves       what the rules read besides g: "inputs", "output" (a tuple; () for neither)
    elementwise True when the output is shaped like the broadcast inputs, entry by entry
    linear      True when the op is linear in its inputs (its derivatives are constants)
    rounded     True when a hand calculation writes its value rounded (a function lookup:
                exp, ln, √, sin ...); `explain(round=k)` rounds exactly these
    symbol      the short operator shown on a graph picture node ("+", "σ"); default: name
    precedence  binding strength of an infix formula (1 + -, 2 · /, 3 unary -, 4 ^); 9 = atom
    hint        what to tell a user whose inputs the forward rejected
    domain      where the generated tests sample inputs: "any", "nonzero" (away from a kink
                at 0), "positive" (inside log/√/pow domains), "distinct" (no ties)

Optional, for speed:

    first_order_kernel  per input (None: the rule), an array-only algorithm the engine runs
                        instead of the rule for a first-order backward, when it is measurably
                        faster than the rule (bench/NOTES.md); tests compare it with the rule
    scatter             params -> a basic index (or None), when the first-order gradient is
                        g put at that index of zeros shaped like the input (getitem): the engine
                        then adds g into one buffer for the input

Conventions at non-differentiable points follow PyTorch and are written at each rule as NOTE.
"""
import itertools

from .. import backend
from ..autograd import FREEZE_EVERY, Node, grad_mode, graph_gc
from ..errors import ShapeError
from ..tensor import Tensor

np = backend.np
_wrap = Tensor._wrap
_recorded = itertools.count(1)   # nodes recorded, for autograd.graph_gc

REGISTRY = {}
ATOM = 9           # the binding strength of a function call or a name
DOMAINS = ("any", "nonzero", "positive", "distinct")


class Primitive:
    __slots__ = ("name", "forward", "vjps", "inputs", "formula", "derivs", "saves",
                 "elementwise", "linear", "rounded", "symbol", "precedence", "hint", "domain",
                 "first_order_kernel", "scatter", "variadic")

    def __init__(self, name, forward, vjps, formula, derivs, hint="", *, inputs=None,
                 saves=("inputs", "output"), elementwise=False, linear=False, rounded=False,
                 symbol=None, precedence=ATOM, domain="any", first_order_kernel=None,
                 scatter=None):
        self.name = name
        self.forward = forward
        self.variadic = callable(vjps)
        self.vjps = vjps if self.variadic else tuple(vjps)
        n = None if self.variadic else len(self.vjps)
        self.inputs = tuple(inputs) if inputs is not None else _default_names(n)
        self.formula = formula
        self.derivs = tuple(derivs)
        self.saves = tuple(saves)
        self.elementwise = elementwise
        self.linear = linear
        self.rounded = rounded
        self.symbol = symbol or name
        self.precedence = precedence
        self.hint = hint
        self.domain = domain
        self.first_order_kernel = first_order_kernel
        self.scatter = scatter
        self._check(n)
        REGISTRY[name] = self

    def _check(self, n):
        if self.name in REGISTRY:
            raise ValueError(f"primitive {self.name!r} registered twice")
        if self.domain not in DOMAINS:
            raise ValueError(f"primitive {self.name!r}: domain must be one of {DOMAINS}")
        if n is not None and (len(self.inputs) != n or len(self.derivs) != n):
            raise ValueError(f"primitive {self.name!r}: {n} rules need {n} input names and "
                             f"{n} derivatives")
        kernels = self.first_order_kernel
        if kernels is not None and (self.variadic or len(kernels) != n):
            raise ValueError(f"primitive {self.name!r}: first_order_kernel needs one entry "
                             "(or None) per input")

    @property
    def kernels(self):
        """The first-order rules: each input's kernel where declared, else its rule."""
        if self.first_order_kernel is None:
            return self.vjps
        return tuple(k or r for k, r in zip(self.first_order_kernel, self.vjps))

    def vjp_rule(self, i):
        return self.vjps(i) if self.variadic else self.vjps[i]

    def __call__(self, *inputs, **params):
        """Compute on arrays; record on Tensors (any Tensor among the inputs lifts the rest)."""
        for t in inputs:
            if isinstance(t, Tensor):
                return apply(self, tuple(as_tensor(u, t) for u in inputs), **params)
        return self.forward(*inputs, **params)

    def __repr__(self):
        return f"<primitive {self.name}>"


def _default_names(n):
    if n == 1:
        return ("x",)
    if n == 2:
        return ("a", "b")
    return tuple(f"x{i + 1}" for i in range(n or 0))


def value(x):
    """The raw array of a Tensor, or `x` itself: for rules that read values (masks, signs)."""
    return x.data if isinstance(x, Tensor) else x


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
