"""Traced arrays: how a capture tells values computed from a step's inputs and state apart
from constants.

While `cr.compile` captures a call, the arrays of the call's inputs and of the state it reads
(parameters, buffers) are replaced by `Traced` views of themselves (same memory), and every
operation's result is a `Traced` array too. NumPy keeps the subclass through ufuncs, methods,
views and (via `__array_function__` below) its other functions, so any array computed from a
traced one is traced. Two things follow:

- an array that reaches a recorded operation without having been made by one (``x.data * 2``
  handed in as a constant, a mask computed with NumPy) is recognised as computed from traced
  values: replaying it as a constant would be stale, so the capture stops with a CompileError;
- reading a traced value into Python (``bool``, ``float``, ``int``, ``.item()``, ``.tolist()``,
  an index) outside chainrule's own operations is a value-dependent decision the replay could
  not repeat: CompileError naming the user's line (or, with ``fallback=True``, the function is
  run eagerly from then on).

Inside chainrule's operations (a primitive's forward or VJP rule, `compute`, `decide`, the
engine, a recorded optimizer call) reading values is fine: the replay calls that very code
again. Printing a traced tensor is allowed (NumPy's printing reads values; it only prints at
the capture). Outside a capture, or for an array left over from another capture, a Traced
array is inert and its results are plain arrays.
"""
import sys
import threading

from .. import backend

np = backend.np

_local = threading.local()


def current():
    """The capture session running in this thread, or None."""
    return getattr(_local, "session", None)


def set_current(session):
    _local.session = session


# Code objects inside which reading a traced value is the library's own business (filled by
# capture.py: apply, compute, decide, the engine's walk, recorded host calls ...).
TRUSTED = set()
_PRINT_FILES = set()


def _print_files():
    if not _PRINT_FILES:
        for name, module in list(sys.modules.items()):
            if name.startswith("numpy") and name.endswith("arrayprint"):
                _PRINT_FILES.add(getattr(module, "__file__", None))
        _PRINT_FILES.discard(None)
    return _PRINT_FILES


def trusted(depth=2):
    """True when the caller runs inside chainrule's recorded code (or NumPy's printing)."""
    files = _print_files()
    f = sys._getframe(depth)
    while f is not None:
        code = f.f_code
        if code in TRUSTED or code.co_filename in files:
            return True
        f = f.f_back
    return False


def _wrap_result(result, session):
    """`result` (of a NumPy call on traced arrays) with every array in it traced."""
    if isinstance(result, np.ndarray):
        if type(result) is not Traced:
            result = result.view(Traced)
            result._session = session
        return result
    if isinstance(result, np.generic):
        out = np.asarray(result).view(Traced)
        out._session = session
        return out
    if type(result) is tuple:
        return tuple(_wrap_result(r, session) for r in result)
    if type(result) is list:
        return [_wrap_result(r, session) for r in result]
    return result


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, Traced) else x


# NumPy functions that write into their first argument.
_WRITES = {"copyto", "put", "place", "putmask", "put_along_axis", "fill_diagonal"}

# NumPy functions whose answers depend on shapes and dtypes only (not values).
_STATIC = {"shape", "ndim", "size", "result_type", "can_cast", "min_scalar_type",
           "may_share_memory", "shares_memory", "iscomplexobj", "isrealobj", "isscalar",
           "broadcast_shapes", "promote_types"}


class Traced(np.ndarray):
    """A view of an array whose values a capture traces (see the module docstring)."""

    def __array_finalize__(self, obj):
        self._session = getattr(obj, "_session", None)

    # ----- keeping the trace through NumPy -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        session = None
        args = []
        for x in inputs:
            if type(x) is Traced:
                session = session or x._session
                x = x.view(np.ndarray)
            args.append(x)
        live = session is not None and session is current()
        out = kwargs.get("out")
        if out is not None:
            plain = []
            for o in out:
                if type(o) is Traced:
                    if o._session is current() and current() is not None and not trusted():
                        current().value_read(
                            f"an in-place NumPy update (np.{ufunc.__name__}, `a.data -= ...`) "
                            "of a tensor's array, which no replay would repeat; update the "
                            "tensor itself (with cr.no_grad(): p -= lr * p.grad)", writes=True)
                    o = o.view(np.ndarray)
                elif o is not None and live and not trusted():
                    session.value_read(f"np.{ufunc.__name__}(..., out=...) writing values "
                                       "computed from traced tensors into an untraced array, "
                                       "which no replay would repeat", writes=True)
                plain.append(o)
            kwargs["out"] = tuple(plain)
        where = kwargs.get("where")
        if type(where) is Traced:
            kwargs["where"] = where.view(np.ndarray)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        if method == "at" or not live:
            return result
        return _wrap_result(result, session)

    def __array_function__(self, func, types, args, kwargs):
        session = self._session
        live = session is not None and session is current()
        name = getattr(func, "__name__", "")
        if live and name in _WRITES and args and not trusted():
            session.value_read(f"np.{name}(...) writing into an array while traced values are "
                               "involved, which no replay would repeat; use tensor operations",
                               writes=True)
        result = func._implementation(*_unwrap(args), **_unwrap(kwargs))
        if not live:
            return result
        if isinstance(result, (bool, int, float, complex)) and name not in _STATIC:
            if not trusted():
                session.value_read(f"np.{name}(...) of a traced array")
            return result
        return _wrap_result(result, session)

    def __getitem__(self, index):
        out = super().__getitem__(_unwrap(index))
        if isinstance(out, np.generic):
            s = self._session
            out = np.asarray(out).view(Traced)
            out._session = s
        return out

    def __setitem__(self, index, value):
        s = self._session
        if s is not None and s is current() and not trusted():
            s.value_read("an assignment into a tensor's array (`a.data[...] = ...`), which no "
                         "replay would repeat; use tensor operations (copy_, where)",
                         writes=True)
        super().__setitem__(_unwrap(index), _plain(value))

    def __iter__(self):
        if self.ndim == 1:
            return (self[i] for i in range(self.shape[0]))
        return super().__iter__()

    # ----- reading values into Python -----
    def _read(self, what):
        s = self._session
        if s is not None and s is current() and not trusted(3):
            s.value_read(what)

    def __bool__(self):
        self._read("bool(...) (an `if`, `and`, `or`, `while` on a tensor's value)")
        return super().__bool__()

    def __float__(self):
        self._read("float(...)")
        return super().__float__()

    def __int__(self):
        self._read("int(...)")
        return super().__int__()

    def __index__(self):
        self._read("a tensor's value used as an index or size")
        return super().__index__()

    def __complex__(self):
        self._read("complex(...)")
        return super().__complex__()

    def item(self, *args):
        self._read(".item()")
        return super().item(*args)

    def tolist(self):
        self._read(".tolist()")
        return super().tolist()

    def __format__(self, spec):
        self._read("formatting a tensor's value")
        return format(self.view(np.ndarray), spec)

    def __reduce__(self):     # pickled (saved) as a plain array
        return self.view(np.ndarray).__reduce__()


def _unwrap(x):
    """`x` (an argument tuple, list, dict or value) with Traced arrays as plain views."""
    t = type(x)
    if t is Traced:
        return x.view(np.ndarray)
    if t is tuple:
        return tuple(_unwrap(v) for v in x)
    if t is list:
        return [_unwrap(v) for v in x]
    if t is dict:
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def traced_by(array, session):
    """True when `array` is (or is a view of) a Traced array of `session`."""
    a = array
    while a is not None:
        if type(a) is Traced and a._session is session:
            return True
        a = a.base if isinstance(a, np.ndarray) else None
    return False


def trace(array, session):
    """A Traced view of `array` for `session` (the array itself when it already is one).
    NOTE: an array on a device (CuPy, check) is not traced (only NumPy arrays can be
    subclassed so): the capture still matches it to its buffer by identity, but cannot catch
    values computed from it outside chainrule's operations; `cr.compile(fn, check=...)` can."""
    if (type(array) is Traced and array._session is session) or not isinstance(array, np.ndarray):
        return array
    view = array.view(Traced)
    view._session = session
    return view
