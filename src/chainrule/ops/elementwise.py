"""Elementwise primitives: arithmetic, powers, transcendental functions, activations.

Each entry: name, forward, one VJP rule per input (written once for arrays and Tensors, see
registry.py), the formula and local derivatives that `explain` prints. Broadcasting is undone
by the engine. Masks built from input values are constants (their derivative is zero almost
everywhere), so they are plain arrays of `value(...)`s; a bool mask multiplies a gradient of any
float dtype in one pass.
"""
from .. import backend
from ..errors import ChainruleError, DTypeError, ShapeError
from ..tensor import Tensor
from .registry import Primitive, apply, as_tensor, astype, compute, guard, lift_pair, value

np = backend.np

BROADCAST_HINT = ("Shapes must broadcast: align them from the right, each pair of dimensions "
                  "equal or one of them 1; reshape or unsqueeze an operand to fix it.")


def _mask(array, like):
    """A mask or other constant array in the dtype of the gradient `like`."""
    return backend.xp_of(array).asarray(array, dtype=like.dtype)


def _same(g, y, *args, **params):
    return g


def _negated(g, y, *args, **params):
    return -g


_ARITH = dict(elementwise=True, hint=BROADCAST_HINT)

# ---- arithmetic ----
ADD = Primitive("add", np.add, [_same, _same], inputs="ab", formula="a + b", derivs=["1", "1"],
                saves=(), linear=True, symbol="+", precedence=1, **_ARITH,
                grouping="associative", layer_role="bias", algebra="addition")
SUB = Primitive("sub", np.subtract, [_same, _negated], inputs="ab", formula="a - b",
                derivs=["1", "-1"], saves=(), linear=True, symbol="−", precedence=1, **_ARITH,
                grouping="left", algebra="difference")
MUL = Primitive("mul", np.multiply, [lambda g, y, a, b: g * b, lambda g, y, a, b: g * a],
                inputs="ab", formula="a · b", derivs=["b", "a"], saves=("inputs",),
                reads=((1,), (0,)),
                symbol="×", precedence=2, **_ARITH, grouping="associative", algebra="product")
DIV = Primitive("div", np.true_divide,
                [lambda g, y, a, b: g / b, lambda g, y, a, b: -g * y / b],
                inputs="ab", formula="a / b", derivs=["1/b", "-a/b²"], rounded=True,
                symbol="÷", precedence=2, domain=("any", "nonzero"), **_ARITH,
                grouping="left", algebra="quotient", derivs_rounded=(True, True),
                output_read_by=(1,), reads=((1,), (1,)))     # y is read by b's rule only
NEG = Primitive("neg", np.negative, [_negated], formula="-x", derivs=["-1"], saves=(),
                elementwise=True, linear=True, symbol="−x", precedence=3, algebra="negation")


def _pow_base(g, y, a, b):
    # NOTE: where the exponent is 0 the derivative is 0 (PyTorch), even at a = 0. The exponent
    # b - 1 is replaced by 0 there (b · a^0 = 0), so 0^-1 = inf is never formed: no warning,
    # and no inf · 0 = nan reaching a second derivative.
    e = b - 1.0
    zero_exp = value(b) == 0
    if zero_exp.any():
        e = WHERE(e, 0.0, cond=~zero_exp)
    return g * (b * POW(a, e))


def _pow_exponent(g, y, a, b):
    # NOTE: at a = 0 with b >= 0 the derivative is taken as 0 (PyTorch), not nan: ln(a) is
    # evaluated at 1 there (y · ln 1 = 0), so ln 0 = -inf is never formed.
    at_zero = (value(a) == 0) & (value(b) >= 0)
    if at_zero.any():
        a = WHERE(a, 1.0, cond=~at_zero)
    return g * (y * LOG(a))


def _looked_up_power(node):
    """Whether a^b is a table lookup, not exact arithmetic: a fractional or variable b."""
    b = node.inputs[1]
    return bool(b.requires_grad or not np.all(b._data == np.round(b._data)))


POW = Primitive("pow", np.power, [_pow_base, _pow_exponent], inputs="ab", formula="a^b",
                derivs=["b·a^(b-1)", "a^b·ln(a)"], symbol="^", precedence=4,
                domain=("positive", "any"), algebra="power",
                **_ARITH,
                # n·a^(n-1) is exact arithmetic for an integer constant n; a^b·ln a is a lookup
                derivs_rounded=lambda node: (_looked_up_power(node), True),
                # integer powers are exact arithmetic; fractional or variable ones are looked up
                rounded=_looked_up_power,
                output_read_by=(1,))     # y is read by the exponent's rule only


def maximum_rule(first, loses):
    """VJP of maximum/minimum for input 0 (first=True) or 1; `loses(mine, other)` is where
    this input is not picked (np.less for maximum)."""
    def rule(g, y, a, b):
        # NOTE: at a tie the gradient is split evenly between the two inputs, and where either
        # is nan both get it (PyTorch: it is withheld only where the other input wins).
        mine, other = (value(a), value(b)) if first else (value(b), value(a))
        return g * _mask(1.0 - loses(mine, other) - 0.5 * (mine == other), g)
    return rule


MAXIMUM = Primitive("maximum", np.maximum,
                    [maximum_rule(True, np.less), maximum_rule(False, np.less)],
                    inputs="ab", formula="max(a, b)",
                    derivs=["[a > b] (½ at a tie)", "[b > a] (½ at a tie)"], saves=("inputs",),
                    domain="distinct", **_ARITH)
MINIMUM = Primitive("minimum", np.minimum,
                    [maximum_rule(True, np.greater), maximum_rule(False, np.greater)],
                    inputs="ab", formula="min(a, b)",
                    derivs=["[a < b] (½ at a tie)", "[b < a] (½ at a tie)"], saves=("inputs",),
                    domain="distinct", **_ARITH)

# ---- transcendental ----
_FUNC = dict(elementwise=True, rounded=True)
EXP = Primitive("exp", np.exp, [lambda g, y, x: g * y], formula="exp(x)", derivs=["exp(x)"],
                saves=("output",), **_FUNC, algebra="exponential")
LOG = Primitive("log", np.log, [lambda g, y, x: g / x], formula="ln(x)", derivs=["1/x"],
                saves=("inputs",), domain="positive", **_FUNC, algebra="logarithm",
                derivs_rounded=True)
SQRT = Primitive("sqrt", np.sqrt, [lambda g, y, x: g / (2.0 * y)], formula="√x",
                 derivs=["1/(2√x)"], saves=("output",), domain="positive", **_FUNC,
                 derivs_rounded=True)
SIN = Primitive("sin", np.sin, [lambda g, y, x: g * COS(x)], formula="sin(x)",
                derivs=["cos(x)"], saves=("inputs",), **_FUNC, derivs_rounded=True)
COS = Primitive("cos", np.cos, [lambda g, y, x: -g * SIN(x)], formula="cos(x)",
                derivs=["-sin(x)"], saves=("inputs",), **_FUNC, derivs_rounded=True)
TANH = Primitive("tanh", np.tanh, [lambda g, y, x: g * (1.0 - y * y)], formula="tanh(x)",
                 derivs=["1 - y²"], saves=("output",), **_FUNC, activation="saturating")
def _sign(x):
    # NOTE: abs'(0) = 0, the sign function's value there, and abs'(nan) = 0 (PyTorch's sgn).
    return np.where(x == x, np.sign(x), 0)


ABS = Primitive("abs", np.abs, [lambda g, y, x: g * _mask(_sign(value(x)), g)],
                formula="|x|", derivs=["sign(x)"], saves=("inputs",), elementwise=True,
                domain="nonzero")


def _sigmoid(x):
    # exp of a non-positive number only, so no overflow warnings for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


SIGMOID = Primitive("sigmoid", _sigmoid, [lambda g, y, x: g * (y * (1.0 - y))],
                    formula="σ(x) = 1/(1 + exp(-x))", derivs=["y(1 - y)"], saves=("output",),
                    symbol="σ", **_FUNC, activation="saturating")
# NOTE: relu'(0) = 0 (PyTorch: the gradient is stopped only where x <= 0, so it passes at
# x = nan too).
RELU = Primitive("relu", lambda x: np.maximum(x, 0),
                 [lambda g, y, x: g * ~(value(y) <= 0)], formula="max(x, 0)",
                 derivs=["[x > 0]"], saves=("output",), elementwise=True, domain="nonzero",
                 activation="rectifier")


def _clip_forward(x, lo, hi):
    return np.clip(x, lo, hi)


def _clip_rule(g, y, x, lo, hi):
    # NOTE: at the bounds themselves the gradient passes (PyTorch's clamp).
    x = value(x)
    inside = backend.xp_of(x).ones(x.shape, dtype=bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return g * inside


CLIP = Primitive("clip", _clip_forward, [_clip_rule], formula="clip(x, lo, hi)",
                 derivs=["[lo ≤ x ≤ hi]"], saves=("inputs",), elementwise=True)


def _where_forward(a, b, cond):
    return np.where(cond, a, b)


WHERE = Primitive("where", _where_forward,
                  [lambda g, y, a, b, cond: WHERE(g, 0.0, cond=cond),
                   lambda g, y, a, b, cond: WHERE(0.0, g, cond=cond)],
                  inputs="ab", formula="cond ? a : b", derivs=["[cond]", "[not cond]"],
                  saves=(), linear=True, **_ARITH, algebra="selection")


def _cast_forward(x, dtype):
    return x.astype(dtype)


CAST = Primitive("cast", _cast_forward, [lambda g, y, x, dtype: CAST(g, dtype=x.dtype)],
                 formula="x as dtype", derivs=["1"], saves=(), elementwise=True, linear=True)


def _to_device_forward(x, device, source):
    return backend.to_device(x, device)


# NOTE: a copy between devices (PyTorch's `_to_copy`); the gradient is copied back to where
# the input lives, so a CPU leaf gets a CPU .grad from a loss computed on a GPU.
TO_DEVICE = Primitive(
    "to_device", _to_device_forward,
    [lambda g, y, x, device, source: TO_DEVICE(g, device=source, source=device)],
    formula="x on device", derivs=["1"], saves=(), elementwise=True, linear=True)


# ---- public functions ----
# Docstrings of the generated functions: what each computes and one example, the values and
# gradients below being what the example prints. The local derivative comes from the registry.
_UNARY_DOCS = {  # name: (what it computes, x, f(x), f'(x))
    "neg": ("Negation -x (the unary minus)", "[1.0, -2.0]", "[-1.0, 2.0]", "[-1.0, -1.0]"),
    "exp": ("e to the power x", "[0.0]", "[1.0]", "[1.0]"),
    "log": ("Natural logarithm ln x", "[1.0]", "[0.0]", "[1.0]"),
    "sqrt": ("Square root √x (its gradient at 0 is inf, as in PyTorch)", "[4.0, 0.25]",
             "[2.0, 0.5]", "[0.25, 1.0]"),
    "sin": ("Sine", "[0.0]", "[0.0]", "[1.0]"),
    "cos": ("Cosine", "[0.0]", "[1.0]", "[-0.0]"),
    "tanh": ("Hyperbolic tangent", "[0.0]", "[0.0]", "[1.0]"),
    "abs": ("Absolute value |x| (gradient 0 at 0, as in PyTorch)", "[-2.0, 0.0, 3.0]",
            "[2.0, 0.0, 3.0]", "[-1.0, 0.0, 1.0]"),
    "sigmoid": ("Logistic sigmoid 1/(1 + e^-x), without overflow for large |x|", "[0.0]",
                "[0.5]", "[0.25]"),
    "relu": ("max(x, 0) (gradient 0 at 0, as in PyTorch)", "[-1.0, 0.0, 2.0]",
             "[0.0, 0.0, 2.0]", "[0.0, 0.0, 1.0]"),
}
_BINARY_DOCS = {  # name: (what it computes, a, b, f(a, b), ∂/∂a, ∂/∂b summed over a broadcast)
    "add": ("a + b", "[1.0, 2.0]", "10.0", "[11.0, 12.0]", "[1.0, 1.0]", "2.0"),
    "sub": ("a - b", "[5.0, 3.0]", "[1.0, 1.0]", "[4.0, 2.0]", "[1.0, 1.0]", "[-1.0, -1.0]"),
    "mul": ("a · b", "[2.0, 3.0]", "[4.0, 5.0]", "[8.0, 15.0]", "[4.0, 5.0]", "[2.0, 3.0]"),
    "pow": ("a to the power b (0 for both gradients where b = 0 or a = 0, as in PyTorch)",
            "[1.0, 0.0]", "[3.0, 2.0]", "[1.0, 0.0]", "[3.0, 0.0]", "[0.0, 0.0]"),
    "maximum": ("The larger of a and b (a tie gives each half the gradient)", "[1.0, 2.0, 3.0]",
                "[2.0, 2.0, 2.0]", "[2.0, 2.0, 3.0]", "[0.0, 0.5, 1.0]", "[1.0, 0.5, 0.0]"),
    "minimum": ("The smaller of a and b (a tie gives each half the gradient)", "[1.0, 2.0, 3.0]",
                "[2.0, 2.0, 2.0]", "[1.0, 2.0, 2.0]", "[1.0, 0.5, 0.0]", "[0.0, 0.5, 1.0]"),
}
_OPERATOR_ONLY = {"neg", "add", "sub", "mul", "pow"}   # not in `cr.`; Tensor operators call them


def _call(name):
    return f"cr.ops.{name}" if name in _OPERATOR_ONLY else f"cr.{name}"


def _unary_doc(prim):
    if prim.name not in _UNARY_DOCS:
        return None
    what, x, y, dy = _UNARY_DOCS[prim.name]
    return f"""{what}, elementwise.
    Local derivative: ∂y/∂x = {prim.derivs[0]} (y the output).

    >>> import chainrule as cr
    >>> x = cr.tensor({x}, requires_grad=True)
    >>> y = {_call(prim.name)}(x)
    >>> y.sum().backward()
    >>> y.tolist(), x.grad.tolist()
    ({y}, {dy})
    """


def _binary_doc(prim):
    if prim.name not in _BINARY_DOCS:
        return None
    what, a, b, y, da, db = _BINARY_DOCS[prim.name]
    return f"""{what}, elementwise with broadcasting.
    Local derivatives: ∂y/∂a = {prim.derivs[0]}, ∂y/∂b = {prim.derivs[1]}.

    >>> import chainrule as cr
    >>> a = cr.tensor({a}, requires_grad=True)
    >>> b = cr.tensor({b}, requires_grad=True)
    >>> y = {_call(prim.name)}(a, b)
    >>> y.sum().backward()
    >>> y.tolist(), a.grad.tolist(), b.grad.tolist()
    ({y}, {da}, {db})
    """


def _binary(prim):
    def op(a, b):
        try:
            a, b = lift_pair(a, b)
        except ChainruleError as exc:
            raise renamed(exc, prim.name) from exc
        return apply(prim, (a, b))
    op.__name__ = prim.name
    op.__doc__ = _binary_doc(prim)
    return op


def _unary(prim):
    def op(x):
        try:
            x = as_tensor(x)
        except ChainruleError as exc:
            raise renamed(exc, prim.name) from exc
        return apply(prim, (x,))
    op.__name__ = prim.name
    op.__doc__ = _unary_doc(prim)
    return op


def renamed(exc, op):
    """A conversion error (raised as 'tensor: ...') re-raised under the op that was called."""
    return type(exc)(str(exc).replace("tensor:", f"{op}: an operand:", 1))


add, _sub, mul, _div = _binary(ADD), _binary(SUB), _binary(MUL), _binary(DIV)


def _is_bool(v):
    return v._data.dtype.kind == "b" if isinstance(v, Tensor) else isinstance(v, (bool, np.bool_))


def sub(a, b):
    """a - b. NOTE: a bool operand is refused, as in PyTorch (subtracting masks is almost
    always a bug: ~mask inverts one).

    >>> import chainrule as cr
    >>> (cr.tensor([3.0, 5.0]) - 1).tolist()
    [2.0, 4.0]
    """
    if _is_bool(a) or _is_bool(b):
        raise DTypeError("sub: subtraction with a bool operand is not supported (as in "
                         "PyTorch); to invert a mask use ~mask, or convert it first with "
                         ".astype(cr.int64) or .float().")
    return _sub(a, b)


def _integral(v):
    return (v._data.dtype.kind in "iub") if isinstance(v, Tensor) else \
        isinstance(v, (int, np.integer, np.bool_))


def div(a, b):
    """a / b, true division: two integer operands give the default float dtype (PyTorch), not
    NumPy's float64.

    >>> import chainrule as cr
    >>> (cr.tensor([1, 2]) / 2).tolist()
    [0.5, 1.0]
    """
    if _integral(a) and _integral(b):
        dtype = backend.get_default_dtype()
        a, b = (compute(astype, (v,), dtype=dtype) if isinstance(v, Tensor) else
                Tensor._wrap(backend.to_array(v, dtype)) for v in (a, b))
    return _div(a, b)
pow, maximum, minimum = _binary(POW), _binary(MAXIMUM), _binary(MINIMUM)
neg, exp, log, sqrt = _unary(NEG), _unary(EXP), _unary(LOG), _unary(SQRT)
sin, cos, tanh, abs = _unary(SIN), _unary(COS), _unary(TANH), _unary(ABS)
sigmoid, relu = _unary(SIGMOID), _unary(RELU)


def clip(x, min=None, max=None):
    """Limit values to [min, max] (either may be None; numbers or tensors).

    >>> import chainrule as cr
    >>> cr.clip(cr.tensor([-2.0, 0.5, 3.0]), -1.0, 1.0).tolist()
    [-1.0, 0.5, 1.0]
    """
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clip_by_tensors(as_tensor(x), min, max)
    return apply(CLIP, (as_tensor(x),), lo=min, hi=max)


def _clip_by_tensors(x, lo, hi):
    """PyTorch's clamp with tensor bounds, min(max(x, lo), hi), composed from `where` so the
    gradient also reaches the bounds, each input where PyTorch's backward sends it: x where
    lo ≤ x ≤ hi, lo where x < lo < hi, hi where x > hi or hi < lo. NOTE: so at lo = hi below
    or above x nobody gets it, and where an operand is nan the value is nan (PyTorch)."""
    lo = None if lo is None else as_tensor(lo, x)
    hi = None if hi is None else as_tensor(hi, x)
    xv = x._data
    lv = -np.inf if lo is None else lo._data
    hv = np.inf if hi is None else hi._data
    try:
        with np.errstate(invalid="ignore"):
            value = np.minimum(np.maximum(xv, lv), hv)     # nan wherever an operand is
            taken = (lv <= xv) & (xv <= hv)
            out = where(taken, x, 0.0)
            if lo is not None:
                mask = (xv < lv) & (lv < hv) if hi is not None else xv < lv
                out = out + where(mask, lo, 0.0)
                taken = taken | mask
            if hi is not None:
                mask = (xv > hv) | (hv < lv)
                out = out + where(mask, hi, 0.0)
                taken = taken | mask
    except ValueError as exc:
        bound = lo if lo is not None else hi
        raise ShapeError(f"clip: a bound of shape {bound.shape} {bound.dtype} beside an input "
                         f"of shape {x.shape} {x.dtype}: {exc}. {BROADCAST_HINT}") from exc
    # the value where no input is taken (lo = hi), and nan where an operand is nan: constants
    rest = np.where(taken, 0, value) + np.where(np.isnan(value), np.nan, 0)
    return out + Tensor._wrap(rest.astype(out.dtype, copy=False)) if rest.any() else out


def where(cond, a, b):
    """Elementwise `a` where `cond` is true, else `b` (cond is not differentiated).

    >>> import chainrule as cr
    >>> a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = cr.where(a.numpy() > 1.5, a, 0.0)
    >>> y.sum().backward()
    >>> y.tolist(), a.grad.tolist()
    ([0.0, 2.0, 3.0], [0.0, 1.0, 1.0])
    """
    given = cond
    if isinstance(cond, Tensor):
        cond = cond._data
    else:
        try:  # not via the default float dtype: 1e-100 is true, not float32's 0
            cond = backend.to_array(cond if backend.is_array(cond) else
                                    np.asarray(cond)).astype(bool)
        except ChainruleError as exc:
            raise renamed(exc, "where") from exc
        except ValueError as exc:
            raise renamed(backend._conversion_error(cond, None, exc), "where") from exc
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a)
    a, b = lift_pair(a, b)
    # NOTE: a condition on another device (a host mask beside GPU tensors) is moved to the
    # tensors' device, as an index is (PyTorch requires them on one device).
    cond = backend.beside(cond, a._data)
    return guard(apply(WHERE, (a, b), cond=cond), condition=given)


def cast(x, dtype):
    """`x` converted to `dtype`; the gradient is converted back."""
    x = as_tensor(x)
    dtype = backend.as_dtype(dtype, "cast")
    if dtype.kind != "f":   # integers and bools have no gradient: the result leaves the graph
        return compute(astype, (x,), dtype=dtype)
    return apply(CAST, (x,), dtype=dtype)


def to_device(x, device):
    """`x` copied to `device` (a cr.device whose library is loaded); x itself when it is
    there already. Differentiable: the gradient is copied back to x's device."""
    x = as_tensor(x)
    source = backend.device_of(x._data)
    if backend.already_on(source, device):
        return x
    return apply(TO_DEVICE, (x,), device=device, source=source)


def compare(fn, a, b):
    """A comparison: a bool tensor outside the graph."""
    a, b = lift_pair(a, b)
    return compute(fn, (a, b))
