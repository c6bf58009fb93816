"""Tensor: a NumPy array, an optional gradient, and the graph node that made it.

This module is the value type only: the attributes, the conversions that need no operation,
and the gradient flags. Every method that performs an operation (operators, indexing,
reductions, shape methods, in-place updates, backward) is listed once in the method table
`chainrule.ops.methods.METHODS` and bound onto Tensor when `chainrule.ops` is imported (which
`import chainrule` does). This module imports only `errors` and `backend`; nothing here
computes a derivative or records the graph.
"""
from . import backend
from .errors import DTypeError, GraphError, ShapeError

np = backend.np


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

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

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

    def any(self):
        return bool(self.data.any())

    def all(self):
        return bool(self.data.all())

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

    def zero_grad_(self):
        self.grad = None
        return self

    # identity hash: the method table binds an elementwise __eq__, which cannot hash
    __hash__ = object.__hash__
