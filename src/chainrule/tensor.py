"""Tensor: a NumPy array, an optional gradient, and the graph node that made it.

Python operators dispatch to the primitives in `chainrule.ops`; nothing here computes a
derivative. Graph recording happens in `ops.registry.apply`.
"""
import numpy as np

from . import backend
from .errors import DTypeError, GraphError, ShapeError


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad.numpy().tolist()
    [2.0, 4.0]
    """

    __slots__ = ("data", "grad", "requires_grad", "_node", "name", "_version", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators (ndarray * Tensor)

    def __init__(self, data, dtype=None, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = backend.to_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._node = None
        self.name = name
        self._version = 0
        if requires_grad:
            self.requires_grad_()

    @staticmethod
    def _wrap(array):
        """A tensor around `array` with no graph: the fast path used by every op."""
        t = object.__new__(Tensor)
        t.data = array if type(array) is np.ndarray else np.asarray(array)
        t.grad = None
        t.requires_grad = False
        t._node = None
        t.name = None
        t._version = 0
        return t

    # ----- attributes -----
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    def size(self, dim=None):
        """The shape (PyTorch's `size()`), or the length of dimension `dim`."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def T(self):
        return ops.transpose(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return ops.swapaxes(self, -1, -2)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(", threshold=200)
        extra = ""
        if self.data.dtype != backend.get_default_dtype() and self.data.dtype.kind == "f":
            extra += f", dtype={self.data.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{self._node.prim.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        return f"tensor({body}{extra})"

    # ----- conversion -----
    def numpy(self):
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ShapeError(f"item(): tensor has {self.data.size} elements (shape {self.shape}); "
                             "only a one-element tensor converts to a Python number")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ShapeError(f"The truth value of a tensor with {self.data.size} elements is "
                             "ambiguous; use .any() or .all()")
        return bool(self.data)

    def astype(self, dtype):
        return ops.cast(self, dtype)

    to = astype

    def float(self):
        return ops.cast(self, backend.float32)

    def double(self):
        return ops.cast(self, backend.float64)

    def clone(self):
        return ops.cast(self, self.dtype)

    # ----- autograd -----
    def requires_grad_(self, requires_grad=True):
        if requires_grad and not backend.is_float(self.data.dtype):
            raise DTypeError(
                f"requires_grad: a tensor of dtype {self.data.dtype} cannot require grad; only "
                "floating tensors have gradients. Create it with dtype=cr.float32 (or pass "
                "float values such as 1.0).")
        if not requires_grad and self._node is not None:
            raise GraphError("requires_grad_(False) on a non-leaf tensor; use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """The same values, cut from the graph (shares the array)."""
        return Tensor._wrap(self.data)

    def detach_(self):
        self._node = None
        self.requires_grad = False
        return self

    def retain_grad(self):
        from .autograd import retain_grad
        retain_grad(self)
        return self

    def zero_grad_(self):
        self.grad = None
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`.

        A non-scalar tensor needs `gradient=` (the vector in the vector-Jacobian product).
        """
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph)

    # ----- in-place updates (bump the version counter the graph checks) -----
    # NOTE (dtype policy): an in-place arithmetic update never silently loses precision: a
    # tensor or array operand of a wider or fractional dtype (float64 into float32, float into
    # int, int64 into int32) raises DTypeError; integers into floats are allowed (as in
    # NumPy's same_kind and PyTorch). Python and NumPy scalars are values, not
    # storage, and are allowed (p -= lr * g works for any float lr). copy_ is an explicit
    # overwrite and converts same-kind dtypes, as PyTorch's does.
    def _inplace(self, update, other, op="in-place update", exact=False):
        from .autograd import grad_mode
        if self.requires_grad and grad_mode.enabled:
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

    add_, sub_, mul_, div_ = __iadd__, __isub__, __imul__, __itruediv__

    def copy_(self, src):
        """Overwrite the values with `src` (broadcast), in place."""
        return self._inplace(lambda d, o: np.copyto(d, o, casting="same_kind"), src, "copy_")

    fill_ = copy_

    def zero_(self):
        return self.copy_(0)

    # ----- arithmetic -----
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    # comparisons give bool tensors outside the graph
    def __eq__(self, other):
        return ops.compare(np.equal, self, other)

    def __ne__(self, other):
        return ops.compare(np.not_equal, self, other)

    def __lt__(self, other):
        return ops.compare(np.less, self, other)

    def __le__(self, other):
        return ops.compare(np.less_equal, self, other)

    def __gt__(self, other):
        return ops.compare(np.greater, self, other)

    def __ge__(self, other):
        return ops.compare(np.greater_equal, self, other)

    __hash__ = object.__hash__

    # ----- methods that forward to ops -----
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def sin(self):
        return ops.sin(self)

    def cos(self):
        return ops.cos(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def pow(self, exponent):
        return ops.pow(self, exponent)

    def clip(self, min=None, max=None):
        return ops.clip(self, min, max)

    clamp = clip

    def matmul(self, other):
        return ops.matmul(self, other)

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

    def any(self):
        return bool(self.data.any())

    def all(self):
        return bool(self.data.all())

    def reshape(self, *shape):
        return ops.reshape(self, _shape_arg(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        return ops.flatten(self, start_dim, end_dim)

    def transpose(self, *axes):
        """`transpose()` reverses the axes; `transpose(d0, d1)` swaps two (PyTorch);
        `transpose((…))` permutes (NumPy)."""
        if len(axes) == 2 and all(isinstance(a, int) for a in axes):
            return ops.swapaxes(self, *axes)
        axes = _shape_arg(axes) if axes else None
        return ops.transpose(self, axes)

    def permute(self, *axes):
        return ops.transpose(self, _shape_arg(axes))

    def swapaxes(self, a, b):
        return ops.swapaxes(self, a, b)

    def squeeze(self, *args, **kwargs):
        return _kw.squeeze(self, *args, **kwargs)

    def unsqueeze(self, *args, **kwargs):
        return _kw.unsqueeze(self, *args, **kwargs)

    def expand(self, *shape):
        return ops.expand(self, _shape_arg(shape))

    broadcast_to = expand

    def split(self, *args, **kwargs):
        return _kw.split(self, *args, **kwargs)

    def t(self):
        """The transpose of a matrix (PyTorch's `.t()`; a 0-d or 1-D tensor is returned as is)."""
        if self.ndim > 2:
            raise ShapeError(f"t(): expects a tensor with at most 2 dimensions, got shape "
                             f"{self.shape}; use .transpose(d0, d1) or .mT")
        return self if self.ndim < 2 else self.T


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


def _shape_arg(args):
    """Accept both f(2, 3) and f((2, 3))."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


from . import ops  # noqa: E402  (ops builds on Tensor; imported last to close the cycle)
from .ops import keywords as _kw  # noqa: E402

# The hottest operators call their op function directly (one Python call frame less per op).
Tensor.__add__, Tensor.__sub__, Tensor.__mul__ = ops.add, ops.sub, ops.mul
Tensor.__truediv__, Tensor.__matmul__ = ops.div, ops.matmul
