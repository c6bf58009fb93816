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
    formula_2d  the forward as `explain` writes it when the output is a matrix, where that
                differs from formula ("xᵀ" for transpose); None: formula
    derivs      per input, the local derivative ∂y/∂input as `explain` prints it (y: output)
    saves       what the rules read besides g: "inputs", "output" (a tuple; () for neither)
    elementwise True when the output is shaped like the broadcast inputs, entry by entry
    linear      True when the op is linear in its inputs (its derivatives are constants)
    rounded     True when a hand calculation writes its value rounded (a function lookup:
                exp, ln, √, sin ...), or node -> bool where the operands decide (pow: a
                fractional or variable exponent); `explain(round=k)` rounds exactly these
    symbol      the short operator shown on a graph picture node ("+", "σ"); default: name
    precedence  binding strength of an infix formula (1 + -, 2 · / @, 3 unary -, 4 ^); 9 = atom
    grouping    how an infix formula brackets an operand exactly as strong as itself:
                "associative" (a + b + c: on neither side), "left" (a - (b - c): on the
                right); None: every operand that is not an atom is bracketed (-(-x), (a^b)^c)
    activation  as a layer's activation a = f(z) in `explain`'s layer view, how its
                derivative fails: "saturating" (σ, tanh: f' → 0 for large |z|) or "rectifier"
                (relu: f' = 0 for z ≤ 0, dead units); None: not an activation. The view
                writes f' from symbol and derivs, x and y read z and a: σ'(z) = a(1 - a)
    layer_role  its part in a layer z = Wx + b, which `explain` finds in the graph: "product"
                (a @ b, a 2-D weight on either side), "affine" (x @ Wᵀ + b fused; inputs x, W
                and an optional b), "transposed" (W.T, read by a product as x @ Wᵀ), "bias"
                (z + b), "convolution" (a convolution's product of windows and kernel:
                inputs windows, W and an optional b), "windows" (the image cut into the
                windows a convolution multiplies); None: none
    algebra     which elementary operation it is, so that `explain` can recognise textbook
                compounds built of several primitives (a mean squared error, a softmax, a
                cross-entropy): "addition", "difference", "product", "quotient", "negation",
                "power", "exponential", "logarithm", "total" (a sum over axes), "largest" (a
                max over axes), "selection" (cond ? a : b), "indexing" (x[index]); None:
                none of these
    loss        for a primitive that is a whole loss, which one, so `explain` writes it in
                its textbook form: "cross-entropy" (scores and integer labels, the labels in
                the node's params), "soft-cross-entropy" (scores and target probabilities),
                "binary-cross-entropy" (probabilities and targets); None: not a loss
    derivs_rounded  per input (or one for all, or node -> tuple where the operands decide),
                whether a hand calculation writes the local derivative rounded because it
                evaluates a function (cos x for sin, 1/x for ln, 1/(2√x)); `explain(round=k)`
                rounds exactly these in the backward pass too (y(1 - y) of a rounded y is
                exact arithmetic: not rounded)
    output_read_by  where "output" is saved but only some inputs' rules read it (div, pow: the
                exponent's), those inputs' positions: the engine then watches the output for
                in-place changes only when one of them requires grad; None: every rule
    reads       where "inputs" are saved, per input, the positions of the inputs whose values
                its rule reads (mul: ((1,), (0,)): a's gradient needs b, b's needs a), so that
                an input changed in place after the forward raises at backward only when a
                rule that will run reads it, as in PyTorch (which saves per input); None: every
                rule reads every input
    view        True when the output may be a view of input 0's memory (reshape, transpose,
                expand, getitem): where it is (a copy is not), it shares the input's version
                counter and remembers its base, as PyTorch's views do (ops/inplace.py)
    hint        what to tell a user whose inputs the forward rejected
    domain      where the generated tests sample inputs: "any", "nonzero" (away from a kink
                at 0), "positive" (inside log/√/pow domains), "distinct" (no ties); one for
                all inputs, or a tuple with one per input

Optional, for speed:

    first_order_kernel  per input (None: the rule), an array-only algorithm the engine runs
                        instead of the rule for a first-order backward, when it is measurably
                        faster than the rule (bench/NOTES.md); tests compare it with the rule
    scatter             params -> a basic index (or None), when the first-order gradient is
                        g put at that index of zeros shaped like the input (getitem): the engine
                        then adds g into one buffer for the input
    block               (params, i) -> a basic index, when input i's gradient is g at that index
                        (concatenate: its block of the output): the engine takes that slice of g
                        instead of calling the rule with all k inputs, so k inputs cost O(k),
                        not O(k²); tests compare it with the rule

Conventions at non-differentiable points follow PyTorch and are written at each rule as NOTE.
"""
import itertools

from .. import backend
from ..autograd import FREEZE_EVERY, Node, graph_gc
from ..grad_mode import grad_enabled
from ..errors import ShapeError
from ..tensor import Tensor

np = backend.np
_wrap = Tensor._wrap
_recorded = itertools.count(1)   # nodes recorded, for autograd.graph_gc

REGISTRY = {}
ATOM = 9           # the binding strength of a function call or a name
DOMAINS = ("any", "nonzero", "positive", "distinct")


class Primitive:
    __slots__ = ("name", "forward", "vjps", "inputs", "formula", "formula_2d", "derivs",
                 "saves", "elementwise", "linear", "rounded", "symbol", "precedence",
                 "grouping", "activation", "layer_role", "hint", "domain",
                 "first_order_kernel", "scatter", "variadic", "algebra", "loss",
                 "derivs_rounded", "block", "view", "saves_output", "output_read_by",
                 "reads")
    # The values `explain` understands in these fields (see the module docstring).
    GROUPINGS = (None, "associative", "left")
    ACTIVATIONS = (None, "saturating", "rectifier")
    LAYER_ROLES = (None, "product", "affine", "transposed", "bias", "convolution", "windows")
    ALGEBRAS = (None, "addition", "difference", "product", "quotient", "negation", "power",
                "exponential", "logarithm", "total", "largest", "selection", "indexing")
    LOSSES = (None, "cross-entropy", "soft-cross-entropy", "binary-cross-entropy")

    def __init__(self, name, forward, vjps, formula, derivs, hint="", *, inputs=None,
                 saves=("inputs", "output"), elementwise=False, linear=False, rounded=False,
                 symbol=None, precedence=ATOM, domain="any", first_order_kernel=None,
                 scatter=None, formula_2d=None, grouping=None, activation=None,
                 layer_role=None, algebra=None, loss=None, derivs_rounded=False, block=None,
                 view=False, output_read_by=None, reads=None, register=True):
        self.name = name
        self.forward = forward
        self.variadic = callable(vjps)
        self.vjps = vjps if self.variadic else tuple(vjps)
        n = None if self.variadic else len(self.vjps)
        self.inputs = tuple(inputs) if inputs is not None else _default_names(n)
        self.formula = formula
        self.formula_2d = formula_2d
        self.derivs = tuple(derivs)
        self.saves = tuple(saves)
        self.elementwise = elementwise
        self.linear = linear
        self.rounded = rounded
        self.symbol = symbol or name
        self.precedence = precedence
        self.grouping = grouping
        self.activation = activation
        self.layer_role = layer_role
        self.algebra = algebra
        self.loss = loss
        self.derivs_rounded = derivs_rounded
        self.hint = hint
        self.domain = domain
        self.first_order_kernel = first_order_kernel
        self.scatter = scatter
        self.block = block
        self.view = view
        self.saves_output = "output" in self.saves   # the engine watches the output's version
        self.output_read_by = output_read_by
        self.reads = reads
        if register:   # False: a custom autograd.Function's node type (ops/function.py)
            self._check(n)
            REGISTRY[name] = self

    def _check(self, n):
        if self.name in REGISTRY:
            raise ValueError(f"primitive {self.name!r} registered twice")
        domains = self.domain if isinstance(self.domain, tuple) else (self.domain,)
        if any(d not in DOMAINS for d in domains) or len(domains) not in (1, n or 1):
            raise ValueError(f"primitive {self.name!r}: domain must be one of {DOMAINS}, or a "
                             "tuple of them with one per input")
        for field, allowed in (("grouping", self.GROUPINGS), ("activation", self.ACTIVATIONS),
                               ("layer_role", self.LAYER_ROLES),
                               ("algebra", self.ALGEBRAS), ("loss", self.LOSSES)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"primitive {self.name!r}: {field} must be one of {allowed}")
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

    def rounds(self, node):
        """Whether a hand calculation writes `node`'s value rounded (the `rounded` field)."""
        return self.rounded(node) if callable(self.rounded) else self.rounded

    def rounds_derivative(self, node, i):
        """Whether a hand calculation writes input i's local derivative at `node` rounded
        (the `derivs_rounded` field)."""
        flags = self.derivs_rounded
        if callable(flags):
            flags = flags(node)
        if isinstance(flags, tuple):
            return bool(flags[i]) if i < len(flags) else False
        return bool(flags)

    def vjp_rule(self, i):
        return self.vjps(i) if self.variadic else self.vjps[i]

    def input_domain(self, i):
        """The domain test samples of input i are drawn from."""
        return self.domain[i] if isinstance(self.domain, tuple) else self.domain

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
    return x._data if isinstance(x, Tensor) else x


# Set by detect_anomaly: called with each new node (to remember where it was made).
node_hooks = []

# Watchers of every operation outside the backward pass (`cr.compile` records through them),
# called as hook(kind, fn, inputs, params, result) after: "apply" (fn a Primitive), "compute"
# (fn a plain function, below), "inplace" (methods._inplace: fn(self._data, other) updated
# result = inputs[0]) and "decide" (below; result the value). An empty list costs one test.
op_hooks = []


def apply(prim, inputs, **params):
    """Run `prim` on the arrays of `inputs` (Tensors); record a Node when a grad is needed."""
    # The hot path of every op: no list building for the common arities, one Tensor made.
    try:
        if len(inputs) == 2:
            a, b = inputs
            out = prim.forward(a._data, b._data, **params)
            needs = a.requires_grad or b.requires_grad
        elif len(inputs) == 1:
            a = inputs[0]
            out = prim.forward(a._data, **params)
            needs = a.requires_grad
        else:
            out = prim.forward(*[t._data for t in inputs], **params)
            needs = any(t.requires_grad for t in inputs)
    except (ValueError, IndexError, TypeError) as exc:
        raise _explain_failure(prim, inputs, params, exc) from exc
    result = _wrap(out)
    if prim.view:
        _alias(result, inputs[0], prim, params)
    if needs and grad_enabled():
        result.requires_grad = True
        node = result._node = Node(prim, inputs, params, result._data)
        if prim.saves_output and (prim.output_read_by is None or any(
                inputs[i].requires_grad for i in prim.output_read_by)):
            node.watched = ((result._counter(), result._vc[0], -1),)
        if not next(_recorded) % FREEZE_EVERY:
            graph_gc.recorded(node)
        if node_hooks:
            for hook in node_hooks:
                hook(node)
    if op_hooks:
        for hook in op_hooks:
            hook("apply", prim, inputs, params, result)
    return result


def _alias(result, x, prim, params):
    """Make `result` a view of `x` (one version counter, and its base and how it looks into
    it) when its array shares x's memory (NumPy copies where it cannot view)."""
    if _root(result._data) is _root(x._data):
        result._vc = x._counter()
        base, chain = x._view if x._view is not None else (x, ())
        result._view = (base, chain + ((prim, params),))


def _root(a):
    return backend.base_root(a) if type(a) is np.ndarray else backend.memory_root(a)


def guard(result, **tensors):
    """Protect the non-differentiable tensors an op's rules read (class labels, an index, a
    condition: they are its params, not its inputs): the backward pass raises if one of them
    is modified in place after the forward, as it does for inputs. `tensors` maps a name (for
    the message) to a Tensor or a plain value (ignored).

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> idx = cr.tensor([1])
    >>> y = guard(x[idx.numpy()], index=idx)
    >>> idx += 0
    >>> y.sum().backward()
    Traceback (most recent call last):
        ...
    chainrule.errors.GraphError: getitem: one of the variables needed ... the tensor it was given as index ...
    """
    node = result._node if isinstance(result, Tensor) else None
    if node is None:
        return result
    extra = tuple((t._counter(), t._vc[0], name) for name, t in tensors.items()
                  if isinstance(t, Tensor))
    if extra:
        node.watched = extra if node.watched is None else node.watched + extra
    return result


def compute(fn, inputs, **params):
    """`fn(*arrays of inputs, **params)` as a tensor outside the graph: values that are not
    differentiated (comparisons, integer casts, argmax, dropout's random mask, a constant shift).
    Computed here rather than on `.data` so that `cr.compile` sees and replays it.

    >>> import chainrule as cr
    >>> compute(backend.np.greater, (cr.tensor([1.0, -1.0]), cr.tensor(0.0))).tolist()
    [True, False]
    """
    result = _wrap(fn(*[t._data for t in inputs], **params))
    if op_hooks:
        for hook in op_hooks:
            hook("compute", fn, inputs, params, result)
    return result


def decide(fn, *args, **params):
    """`fn(*args, **params)`: a Python value read from arrays that picks a code path (labels
    all valid: the fused loss). `cr.compile` re-evaluates it on every replay and recaptures when
    it changes, so a path chosen from one batch's values is never replayed for another's.

    >>> import chainrule as cr
    >>> decide(lambda a: bool((a > 0).all()), cr.tensor([1.0, 2.0])._data)
    True
    """
    value = fn(*args, **params)
    if op_hooks:
        for hook in op_hooks:
            hook("decide", fn, args, params, value)
    return value


def _explain_failure(prim, inputs, params, exc):
    from ..errors import IndexError_
    devices = backend.mixed_devices([t._data for t in inputs])
    if len(devices) > 1:
        return backend.mixed_device_error(prim.name, devices)
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
        dtype = like._data.dtype
        if type(like._data) is not np.ndarray:   # on a device: made there, not cached
            return _wrap(backend.scalar_on(backend.scalar_array(x, dtype), like._data))
        if dtype.kind == "f" and type(x) in (float, int) and x != 0 and x == x:
            return _constant(x, dtype)
        return _wrap(backend.scalar_array(x, dtype))
    if type(x) is not np.ndarray and backend.is_array(x):
        return _wrap(x)    # a device array (a rule's mask or shift) keeps its dtype, as NumPy's
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
    ka, kb = a._data.dtype.kind, b._data.dtype.kind
    if ka != kb and (ka == "f" or kb == "f"):
        # NOTE: an integer or bool operand takes the float operand's dtype (PyTorch), so float32
        # stays float32 beside an int tensor (NumPy alone would promote to float64).
        if ka == "f":
            b = compute(astype, (b,), dtype=a._data.dtype)
        else:
            a = compute(astype, (a,), dtype=b._data.dtype)
    return a, b


def astype(x, dtype):
    """x converted to `dtype` (a new array), for `compute`."""
    return x.astype(dtype)
