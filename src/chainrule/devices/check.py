"""The "check" device: NumPy arrays wrapped so that they behave like a GPU library's arrays
(CuPy's rules), for proving on a CPU that code never leaves its array module.

A `CheckedArray` computes with NumPy underneath, but, as a CuPy array does, it
- refuses implicit conversion to a host array (`np.asarray(a)`, `float` of a big array...),
- refuses to be combined with a host NumPy array (an array made with `np.zeros` beside it),
- answers reductions with 0-d arrays rather than NumPy scalars,
- refuses NumPy-only keywords that CuPy's ufuncs and reductions lack (`initial=`, `where=`),
  and ufunc methods beyond those CuPy is known to have (`add.reduce`, `add.at`; not
  `maximum.reduce`: use `.max()`).
NumPy's functions reach it through NumPy's dispatch protocols (`__array_ufunc__`,
`__array_function__`), exactly as they reach CuPy; `xp` (the `chainrule.devices.check.xp`
namespace) stands for the `cupy` module: `xp.zeros(...)` makes checked arrays.

    >>> import chainrule as cr
    >>> x = cr.ones(3, device="check")
    >>> str(x.device), (x * 2).sum().item()
    ('check:0', 6.0)
"""
import types

import numpy as np

from .. import backend


class HostArrayError(TypeError):
    """A host (NumPy) array reached code running on a device."""


class CheckedArray:
    """A NumPy array living on the check device (see the module docstring)."""

    __slots__ = ("_a",)

    def __init__(self, array):
        self._a = array

    # ----- refused: leaving the device implicitly
    def __array__(self, dtype=None, copy=None):
        raise HostArrayError("implicit conversion of a check-device array to a NumPy array "
                             "(as CuPy refuses it); copy it to the host explicitly with .cpu()")

    # ----- NumPy's dispatch protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _no_numpy_only(kwargs, f"{ufunc.__name__}.{method}")
        if method != "__call__" and ufunc.__name__ not in _UFUNC_METHODS.get(method, ()):
            raise TypeError(f"{ufunc.__name__}.{method}: CuPy's ufuncs may lack this method; "
                            "use the array's own reduction (.max(), .sum()) instead")
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        _no_numpy_only(kwargs, func.__name__)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # ----- attributes and methods: NumPy's, on the wrapped array
    @property
    def base(self):
        return self._a.base

    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    def __getattr__(self, name):
        if name.startswith("__"):    # no __array_interface__ etc.: NumPy would read the memory
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            _no_numpy_only(kwargs, name)
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        return method

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(row) for row in self._a)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __repr__(self):
        return f"checked({self._a!r})"

    def __reduce__(self):
        return (CheckedArray, (self._a,))

    def __copy__(self):
        return CheckedArray(self._a.copy())

    def __deepcopy__(self, memo):
        return CheckedArray(self._a.copy())

    __hash__ = None


def _operator(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace(ufunc):
    def method(self, other):
        ufunc(self, other, out=(self,))
        return self
    return method


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
           "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power,
           "matmul": np.matmul, "and": np.bitwise_and, "or": np.bitwise_or,
           "xor": np.bitwise_xor, "lshift": np.left_shift, "rshift": np.right_shift}
for _name, _ufunc in _BINARY.items():
    setattr(CheckedArray, f"__{_name}__", _operator(_ufunc))
    setattr(CheckedArray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(CheckedArray, f"__i{_name}__", _inplace(_ufunc))
for _name, _ufunc in {"lt": np.less, "le": np.less_equal, "gt": np.greater,
                      "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal}.items():
    setattr(CheckedArray, f"__{_name}__", _operator(_ufunc))
CheckedArray.__neg__ = lambda self: np.negative(self)
CheckedArray.__pos__ = lambda self: np.positive(self)
CheckedArray.__abs__ = lambda self: np.absolute(self)
CheckedArray.__invert__ = lambda self: np.invert(self)


# The ufunc methods CuPy is known to implement, by method
_UFUNC_METHODS = {"reduce": {"add", "multiply"}, "accumulate": {"add", "multiply"},
                  "at": {"add", "subtract", "maximum", "minimum"}}
# NumPy keywords CuPy's ufuncs and reductions lack (its copyto does take where=)
_NUMPY_ONLY = ("initial", "where")
_TAKES_WHERE = {"copyto", "putmask"}


def _no_numpy_only(kwargs, name):
    for key in _NUMPY_ONLY:
        if key in kwargs and not (key == "where" and name in _TAKES_WHERE):
            raise TypeError(f"{name}({key}=...): CuPy has no {key}= argument; compute it "
                            "another way (e.g. mask the values first)")


def _unwrap(x):
    """The NumPy arrays inside `x` (nested in tuples, lists and dicts); a host array is refused."""
    t = type(x)
    if t is CheckedArray:
        return x._a
    if t is np.ndarray:
        raise HostArrayError(
            f"a host NumPy array (shape {x.shape}, {x.dtype}) was combined with a check-device "
            "array: code on a device must make its arrays with the device's module "
            "(backend.xp_of(like) / backend.module_for(device)), as CuPy would refuse it too")
    if t is tuple or t is list:
        return t(_unwrap(v) for v in x)
    if t is dict:
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    """NumPy results as check-device arrays; a NumPy scalar becomes a 0-d array (as in CuPy)."""
    t = type(x)
    if t is np.ndarray:
        return CheckedArray(x)
    if isinstance(x, np.generic):
        return CheckedArray(np.asarray(x))
    if t is tuple or t is list:
        return t(_wrap(v) for v in x)
    return x


class _Namespace(types.SimpleNamespace):
    """NumPy's namespace with its functions taking and giving check-device arrays; the
    `asarray`/`array` family also copies host data onto the device (as `cupy.asarray` does)."""

    def __init__(self, module):
        super().__init__()
        object.__setattr__(self, "_module", module)

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            value = _Namespace(attr)
        elif isinstance(attr, (type, np.ufunc)) or not callable(attr):
            value = attr    # dtypes, ufuncs (they dispatch by themselves), constants
        elif name in _UPLOADING:
            value = _uploading(attr)
        else:
            value = _checked(attr)
        object.__setattr__(self, name, value)
        return value


_UPLOADING = {"asarray", "array", "ascontiguousarray", "asanyarray"}


def _checked(fn):
    return lambda *args, **kwargs: _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))


def _uploading(fn):
    def upload(data, *args, **kwargs):
        return CheckedArray(np.asarray(fn(_unwrap_lenient(data), *args, **kwargs)))
    return upload


def _unwrap_lenient(x):
    if type(x) is CheckedArray:
        return x._a
    if type(x) in (list, tuple):
        return type(x)(_unwrap_lenient(v) for v in x)
    return x


xp = _Namespace(np)


def load(op="device"):
    """The check device's ArrayKind (always available: it needs NumPy only)."""
    return backend.ArrayKind(
        "check", xp, CheckedArray,
        to_device=lambda a, index: CheckedArray(np.array(a, copy=True)),
        to_host=lambda a: a._a.copy(),
        index_of=lambda a: 0,
        root=lambda a: backend.memory_root(a._a))
