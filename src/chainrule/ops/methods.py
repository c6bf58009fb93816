"""Tensor's operations: the one table of methods bound onto `chainrule.tensor.Tensor`.

`chainrule.tensor` defines Tensor as a value type (its array, gradient, graph node and the
conversions that need no op). Everything that performs an operation (operators, reductions,
shape methods, in-place updates, backward) is a plain function here, listed once in `METHODS`
and bound by `install(Tensor)`, which `chainrule.ops` calls when it is imported. So
`tensor.py` never imports ops, and no method is defined twice.

The functions below are named after the method they become (`sum`, `max`, `__add__`, ...), so
they shadow a few builtins in this module; nothing here uses those builtins.
"""
from .. import autograd, backend
from ..errors import DTypeError, GraphError, ShapeError
from ..grad_mode import grad_enabled
from ..tensor import Tensor
from . import keywords as _kw
from . import registry as _registry
from .elementwise import abs as _abs, add, cast, clip as _clip, compare, cos as _cos, div
from .elementwise import exp as _exp, log as _log, mul, neg, pow as _pow, relu as _relu
from .elementwise import sigmoid as _sigmoid, sin as _sin, sqrt as _sqrt, sub, tanh as _tanh
from .linalg import matmul as _matmul
from .shape import expand as _expand, flatten as _flatten, getitem, reshape as _reshape
from .shape import swapaxes as _swapaxes, transpose as _transpose

np = backend.np


# ----- iteration and the transposes (T and mT are bound as properties) -----
def __iter__(self):
    for i in range(len(self)):
        yield self[i]


def T(self):
    return _transpose(self, tuple(range(self.ndim - 1, -1, -1)))


def mT(self):
    return _swapaxes(self, -1, -2)


# ----- dtype conversions -----
def astype(self, dtype):
    return cast(self, dtype)


def float(self):
    return cast(self, backend.float32)


def double(self):
    return cast(self, backend.float64)


def clone(self):
    return cast(self, self.dtype)


# ----- autograd -----
def retain_grad(self):
    autograd.retain_grad(self)
    return self


def backward(self, gradient=None, retain_graph=None, create_graph=False):
    """Accumulate d(self)/d(leaf) into every leaf's `.grad`.

    A non-scalar tensor needs `gradient=` (the vector in the vector-Jacobian product).
    """
    autograd.backward(self, gradient, retain_graph, create_graph)


# ----- in-place updates (bump the version counter the graph checks) -----
# NOTE (dtype policy): an in-place arithmetic update never silently loses precision: a
# tensor or array operand of a wider or fractional dtype (float64 into float32, float into
# int, int64 into int32) raises DTypeError; integers into floats are allowed (as in
# NumPy's same_kind and PyTorch). Python and NumPy scalars are values, not
# storage, and are allowed (p -= lr * g works for any float lr). copy_ is an explicit
# overwrite and converts same-kind dtypes, as PyTorch's does.
def _inplace(self, update, other, op="in-place update", exact=False):
    if self.requires_grad and grad_enabled():
        raise GraphError(
            f"in-place operation on a tensor of shape {self.shape} that requires grad; the "
            "graph needs its old value. Write x = x + y (out of place), or update it "
            "inside cr.no_grad().")
    o = other.data if isinstance(other, Tensor) else other
    if exact and isinstance(o, np.ndarray) and _loses_precision(o.dtype, self.data.dtype):
        raise DTypeError(
            f"{op}: a {o.dtype} operand of shape {o.shape} would be rounded into this "
            f"{self.data.dtype} tensor of shape {self.shape}, silently losing precision. "
            f"Convert it first (other.astype(cr.{self.data.dtype})) or update out of place "
            f"(x = x {_SYMBOL.get(op, '+')} other gives the wider dtype).")
    try:
        update(self.data, o)
    except (TypeError, ValueError) as exc:
        error = DTypeError if isinstance(exc, TypeError) else ShapeError
        raise error(f"{op}: cannot update a {self.data.dtype} tensor of shape {self.shape} "
                    f"in place with {_describe(other)}: {exc}. The operand must broadcast "
                    "to the tensor's shape and cast to its dtype; convert it with "
                    ".astype(...) or update out of place.") from exc
    self._version += 1
    if _registry.op_hooks:   # cr.compile records the update to replay it
        for hook in _registry.op_hooks:
            hook("inplace", update, (self, other), {"op": op}, self)
    return self


def __iadd__(self, other):
    return self._inplace(lambda d, o: np.add(d, o, out=d, casting="same_kind"), other,
                         "add_", True)


def __isub__(self, other):
    return self._inplace(lambda d, o: np.subtract(d, o, out=d, casting="same_kind"), other,
                         "sub_", True)


def __imul__(self, other):
    return self._inplace(lambda d, o: np.multiply(d, o, out=d, casting="same_kind"), other,
                         "mul_", True)


def __itruediv__(self, other):
    return self._inplace(lambda d, o: np.true_divide(d, o, out=d, casting="same_kind"), other,
                         "div_", True)


def copy_(self, src):
    """Overwrite the values with `src` (broadcast), in place."""
    return self._inplace(lambda d, o: np.copyto(d, o, casting="same_kind"), src, "copy_")


def zero_(self):
    return self.copy_(0)


_SYMBOL = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}


def _loses_precision(src, dst):
    """True when writing `src` values into `dst` storage would round or wrap them."""
    if np.can_cast(src, dst, "safe"):
        return False
    return not (src.kind in "biu" and dst.kind in "fc")


def _describe(value):
    if isinstance(value, (Tensor, np.ndarray)):
        return f"a {value.dtype} operand of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:80]


# ----- arithmetic (__add__, __sub__, __mul__, __truediv__ and __matmul__ are the op functions
# themselves: one Python call frame less on the hottest operators) -----
def __radd__(self, other):
    return add(other, self)


def __rsub__(self, other):
    return sub(other, self)


def __rmul__(self, other):
    return mul(other, self)


def __rtruediv__(self, other):
    return div(other, self)


def __pow__(self, other):
    return _pow(self, other)


def __rpow__(self, other):
    return _pow(other, self)


def __rmatmul__(self, other):
    return _matmul(other, self)


def __neg__(self):
    return neg(self)


def __pos__(self):
    return self


def __abs__(self):
    return _abs(self)


def __getitem__(self, index):
    return getitem(self, index)


# comparisons give bool tensors outside the graph
def __eq__(self, other):
    return compare(np.equal, self, other)


def __ne__(self, other):
    return compare(np.not_equal, self, other)


def __lt__(self, other):
    return compare(np.less, self, other)


def __le__(self, other):
    return compare(np.less_equal, self, other)


def __gt__(self, other):
    return compare(np.greater, self, other)


def __ge__(self, other):
    return compare(np.greater_equal, self, other)


# ----- methods that forward to ops -----
def exp(self):
    return _exp(self)


def log(self):
    return _log(self)


def sqrt(self):
    return _sqrt(self)


def abs(self):
    return _abs(self)


def sin(self):
    return _sin(self)


def cos(self):
    return _cos(self)


def tanh(self):
    return _tanh(self)


def sigmoid(self):
    return _sigmoid(self)


def relu(self):
    return _relu(self)


def pow(self, exponent):
    return _pow(self, exponent)


def clip(self, min=None, max=None):
    return _clip(self, min, max)


def matmul(self, other):
    return _matmul(self, other)


# Reductions take NumPy's axis=/keepdims= or PyTorch's dim=/keepdim= (ops/keywords.py).
def sum(self, *args, **kwargs):
    """Sum over `axis`/`dim` (all when None)."""
    return _kw.sum(self, *args, **kwargs)


def mean(self, *args, **kwargs):
    return _kw.mean(self, *args, **kwargs)


def max(self, *args, **kwargs):
    """Largest value; with `dim=`, (values, indices) as in PyTorch."""
    return _kw.max(self, *args, **kwargs)


def min(self, *args, **kwargs):
    """Smallest value; with `dim=`, (values, indices) as in PyTorch."""
    return _kw.min(self, *args, **kwargs)


def var(self, *args, **kwargs):
    """Variance (correction=1 by default, as in PyTorch)."""
    return _kw.var(self, *args, **kwargs)


def std(self, *args, **kwargs):
    return _kw.std(self, *args, **kwargs)


def norm(self, *args, **kwargs):
    """The p-norm (p = 2 by default; 1 or inf) over `axis`/`dim`."""
    return _kw.norm(self, *args, **kwargs)


def logsumexp(self, *args, **kwargs):
    return _kw.logsumexp(self, *args, **kwargs)


def softmax(self, *args, **kwargs):
    return _kw.softmax(self, *args, **kwargs)


def log_softmax(self, *args, **kwargs):
    return _kw.log_softmax(self, *args, **kwargs)


def argmax(self, *args, **kwargs):
    return _kw.argmax(self, *args, **kwargs)


def argmin(self, *args, **kwargs):
    return _kw.argmin(self, *args, **kwargs)


# ----- shape -----
def reshape(self, *shape):
    return _reshape(self, _shape_arg(shape))


def flatten(self, start_dim=0, end_dim=-1):
    return _flatten(self, start_dim, end_dim)


def transpose(self, *axes):
    """`transpose()` reverses the axes; `transpose(d0, d1)` swaps two (PyTorch);
    `transpose((…))` permutes (NumPy)."""
    if len(axes) == 2 and all(isinstance(a, int) for a in axes):
        return _swapaxes(self, *axes)
    axes = _shape_arg(axes) if axes else None
    return _transpose(self, axes)


def permute(self, *axes):
    return _transpose(self, _shape_arg(axes))


def swapaxes(self, a, b):
    return _swapaxes(self, a, b)


def squeeze(self, *args, **kwargs):
    return _kw.squeeze(self, *args, **kwargs)


def unsqueeze(self, *args, **kwargs):
    return _kw.unsqueeze(self, *args, **kwargs)


def expand(self, *shape):
    return _expand(self, _shape_arg(shape))


def split(self, *args, **kwargs):
    return _kw.split(self, *args, **kwargs)


def t(self):
    """The transpose of a matrix (PyTorch's `.t()`; a 0-d or 1-D tensor is returned as is)."""
    if self.ndim > 2:
        raise ShapeError(f"t(): expects a tensor with at most 2 dimensions, got shape "
                         f"{self.shape}; use .transpose(d0, d1) or .mT")
    return self if self.ndim < 2 else self.T


def _shape_arg(args):
    """Accept both f(2, 3) and f((2, 3))."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


# ---------------------------------------------------------------- the table
# name on Tensor -> what is bound there. Aliases map to the same function.
METHODS = {
    # iteration, transposes
    "__iter__": __iter__,
    "T": property(T),
    "mT": property(mT),
    # dtype conversions
    "astype": astype, "to": astype,
    "float": float,
    "double": double,
    "clone": clone,
    # autograd
    "retain_grad": retain_grad,
    "backward": backward,
    # in-place updates
    "_inplace": _inplace,
    "__iadd__": __iadd__, "add_": __iadd__,
    "__isub__": __isub__, "sub_": __isub__,
    "__imul__": __imul__, "mul_": __imul__,
    "__itruediv__": __itruediv__, "div_": __itruediv__,
    "copy_": copy_, "fill_": copy_,
    "zero_": zero_,
    # arithmetic
    "__add__": add, "__radd__": __radd__,
    "__sub__": sub, "__rsub__": __rsub__,
    "__mul__": mul, "__rmul__": __rmul__,
    "__truediv__": div, "__rtruediv__": __rtruediv__,
    "__pow__": __pow__, "__rpow__": __rpow__,
    "__matmul__": _matmul, "__rmatmul__": __rmatmul__,
    "__neg__": __neg__,
    "__pos__": __pos__,
    "__abs__": __abs__,
    "__getitem__": __getitem__,
    # comparisons
    "__eq__": __eq__, "__ne__": __ne__,
    "__lt__": __lt__, "__le__": __le__,
    "__gt__": __gt__, "__ge__": __ge__,
    # elementwise
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "sin": sin, "cos": cos, "tanh": tanh,
    "sigmoid": sigmoid, "relu": relu, "pow": pow,
    "clip": clip, "clamp": clip,
    "matmul": matmul,
    # reductions
    "sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std, "norm": norm,
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
    "argmax": argmax, "argmin": argmin,
    # shape
    "reshape": reshape, "view": reshape,
    "flatten": flatten,
    "transpose": transpose,
    "permute": permute,
    "swapaxes": swapaxes,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "expand": expand, "broadcast_to": expand,
    "split": split,
    "t": t,
}


def install(cls=Tensor):
    """Bind every entry of `METHODS` onto `cls` (Tensor). Called once, by `chainrule.ops`.

    The functions defined here get the qualified name they had as methods (`Tensor.exp`), so
    tracebacks and help() read as before.
    """
    for name, value in METHODS.items():
        fn = value.fget if isinstance(value, property) else value
        if getattr(fn, "__module__", None) == __name__ and "." not in fn.__qualname__:
            fn.__qualname__ = f"{cls.__name__}.{fn.__name__}"
        setattr(cls, name, value)
