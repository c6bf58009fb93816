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

# The version counter of a tensor nothing has aliased or updated yet: shared and immutable, so
# making a tensor allocates no counter; `_counter()` gives the tensor a list of its own the
# first time one is needed (an update, a view or detach() sharing it, a node watching it).
_FRESH = (0,)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad.numpy().tolist()
    [2.0, 4.0]
    """

    # _data: the array. _vc: the version counter, a one-element list shared by every tensor that
    # shares the memory (views, detach()), or _FRESH; in-place updates bump it and the engine
    # compares it with the version each node saw. _view: for a view made by a recorded shape op, (base,
    # ((primitive, params), ...)): the tensor it looks into and how, so that an in-place update
    # of the view can be recorded on its base (ops/inplace.py).
    __slots__ = ("_data", "grad", "requires_grad", "_node", "name", "_vc", "_view",
                 "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators (ndarray * Tensor)

    def __init__(self, data, dtype=None, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data._data
        self._data = backend.to_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._node = None
        self.name = name
        self._vc = _FRESH
        self._view = None
        if requires_grad:
            self.requires_grad_()

    @staticmethod
    def _wrap(array):
        """A tensor around `array` with no graph: the fast path used by every op."""
        t = object.__new__(Tensor)
        t._data = array if type(array) is np.ndarray or backend.is_array(array) else \
            np.asarray(array)
        t.grad = None
        t.requires_grad = False
        t._node = None
        t.name = None
        t._vc = _FRESH
        t._view = None
        return t

    def _counter(self):
        """This tensor's version counter as a list that aliases can share and updates bump."""
        vc = self._vc
        if type(vc) is not list:      # _FRESH (or a counter unpickled as a tuple)
            vc = self._vc = [vc[0]]
        return vc

    # ----- storage (PyTorch's semantics) -----
    @property
    def data(self):
        """The values as a tensor outside the graph, sharing this tensor's memory (PyTorch's
        `.data`): `p.data.add_(-lr * g)`, `p.data.std()` work as in PyTorch, and, as there, an
        in-place change made through `.data` is not seen by the version checks of the graph
        (use `detach()` for an alias that is). `p.data = t` makes p hold t's values (any shape
        or dtype), keeping p's identity, grad and graph flags.

        >>> import chainrule as cr
        >>> p = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> p.data += 1
        >>> p.data.requires_grad, p.tolist()
        (False, [2.0, 3.0])
        >>> p.data = cr.zeros(3)
        >>> p.shape, p.requires_grad
        ((3,), True)
        """
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        if isinstance(value, Tensor):
            value = value._data
        elif not backend.is_array(value):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        self._data = value

    @property
    def _version(self):
        """How many in-place updates the memory of this tensor has seen (PyTorch's)."""
        return self._vc[0]

    @_version.setter
    def _version(self, value):
        self._counter()[0] = value

    @property
    def _base(self):
        """The tensor this one is a view of (PyTorch's), or None."""
        return None if self._view is None else self._view[0]

    # ----- attributes -----
    @property
    def shape(self):
        return self._data.shape

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def dtype(self):
        return self._data.dtype

    def size(self, dim=None):
        """The shape (PyTorch's `size()`), or the length of dimension `dim`."""
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self):
        return self._data.size

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __repr__(self):
        body = np.array2string(backend.to_host(self._data), separator=", ", prefix="tensor(",
                               threshold=200)
        extra = ""
        if type(self._data) is not np.ndarray:
            extra += f", device='{backend.device_of(self._data)}'"
        if self._data.dtype != backend.get_default_dtype() and self._data.dtype.kind == "f":
            extra += f", dtype={self._data.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{self._node.prim.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        return f"tensor({body}{extra})"

    # ----- conversion -----
    def numpy(self, force=False):
        """The underlying array (shared, not copied). A tensor on a GPU has no NumPy array:
        copy it with `.cpu()` first (or pass force=True for a host copy, as in PyTorch)."""
        if type(self._data) is np.ndarray:
            return self._data
        if force:
            return backend.to_host(self._data)
        from .errors import DeviceError
        raise DeviceError(f"numpy(): the tensor is on {backend.device_of(self._data)}; NumPy "
                          "arrays live on the host. Copy it first: t.cpu().numpy().")

    def item(self):
        if self._data.size != 1:
            raise ShapeError(f"item(): tensor has {self._data.size} elements (shape {self.shape}); "
                             "only a one-element tensor converts to a Python number")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise ShapeError(f"The truth value of a tensor with {self._data.size} elements is "
                             "ambiguous; use .any() or .all()")
        return bool(self._data)

    # ----- autograd -----
    def requires_grad_(self, requires_grad=True):
        if requires_grad and not backend.is_float(self._data.dtype):
            raise DTypeError(
                f"requires_grad: a tensor of dtype {self._data.dtype} cannot require grad; only "
                "floating tensors have gradients. Create it with dtype=cr.float32 (or pass "
                "float values such as 1.0).")
        if not requires_grad and self._node is not None:
            raise GraphError("requires_grad_(False) on a non-leaf tensor; use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """The same values, cut from the graph (shares the memory and the version counter)."""
        t = Tensor._wrap(self._data)
        t._vc = self._counter()
        return t

    def detach_(self):
        self._node = None
        self.requires_grad = False
        return self

    def zero_grad_(self):
        self.grad = None
        return self

    def __getstate__(self):
        """Pickling and deepcopy keep the values, grad, flags and name; a view's link to its
        base is not kept (its shape ops need not be picklable)."""
        state = {k: getattr(self, k) for cls in type(self).__mro__
                 for k in cls.__dict__.get("__slots__", ()) if k != "__weakref__"
                 and hasattr(self, k)}
        state["_view"] = None
        return None, state

    def __setstate__(self, state):
        for k, v in state[1].items():
            object.__setattr__(self, k, v)

    # identity hash: the method table binds an elementwise __eq__, which cannot hash
    __hash__ = object.__hash__
