"""Tensor's operations: the one table of methods bound onto `chainrule.tensor.Tensor`.

`chainrule.tensor` defines Tensor as a value type (its array, gradient, graph node and the
conversions that need no op). Everything that performs an operation (operators, reductions,
shape methods, in-place updates, backward) is a plain function here, listed once in `METHODS`
and bound by `install(Tensor)`, which `chainrule.ops` calls when it is imported. So
`tensor.py` never imports ops, and no method is defined twice.

The functions below are named after the method they become (`sum`, `max`, `all`, `int`,
`type`, `__add__`, ...), so they shadow a few builtins in this module; the builtins are used
as `builtins.all` and so on.
"""
import builtins

from .. import autograd, backend
from ..errors import DTypeError, GraphError, ShapeError
from ..grad_mode import grad_enabled
from ..tensor import Tensor
from . import compat as _compat
from . import inplace as _inplace_graph
from . import keywords as _kw
from . import registry as _registry
from .elementwise import abs as _abs, add as _add, cast, clip as _clip, compare, cos as _cos, div
from .elementwise import to_device
from .elementwise import exp as _exp, log as _log, mul, neg, pow as _pow, relu as _relu
from .elementwise import sigmoid as _sigmoid, sin as _sin, sqrt as _sqrt, sub as _sub, tanh as _tanh
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
    return _converted(self, backend.float32)


def double(self):
    return _converted(self, backend.float64)


def half(self):
    return _converted(self, backend.float16)


def long(self):
    return _converted(self, backend.int64)


def int(self):
    return _converted(self, backend.int32)


def short(self):
    return _converted(self, backend.int16)


def byte(self):
    return _converted(self, backend.uint8)


def bool(self):
    return _converted(self, backend.bool_)


def _converted(x, dtype):
    """PyTorch's conversions: the tensor itself when it already has `dtype`, else a cast."""
    return x if x.dtype == dtype else cast(x, dtype)


def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False,
       memory_format=None):
    """PyTorch's `to`: a dtype, a device ("cpu", "cuda:0", cr.device, an int for a CUDA
    index), another tensor (its dtype and device), or a device and a dtype. Returns the tensor
    itself when nothing changes (a copy with copy=True). Moving is differentiable."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (str, backend.device)) or builtins.type(a).__name__ == "device":
            device = a
        elif isinstance(a, (builtins.bool, np.bool_)):
            continue   # PyTorch's positional non_blocking
        elif isinstance(a, (builtins.int, np.integer)):
            device = builtins.int(a)   # PyTorch: a CUDA index
        else:
            dtype = a
    out = self
    if device is not None:
        out = to_device(out, backend.check_device(device, "Tensor.to"))
    target = out.dtype if dtype is None else backend.as_dtype(dtype, "Tensor.to")
    if target != out.dtype or (copy and out is self):
        out = cast(out, target)
    return out


# PyTorch's tensor type names (Tensor.type())
_TYPE_NAMES = {np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
               np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor",
               np.dtype(np.int32): "IntTensor", np.dtype(np.int16): "ShortTensor",
               np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
               np.dtype(np.bool_): "BoolTensor"}


def type(self, dtype=None, non_blocking=False):
    """Without an argument, PyTorch's type name ('torch.FloatTensor'); with a dtype or such a
    name, the tensor converted to it (itself when it already has it)."""
    if dtype is None:
        return "torch." + _TYPE_NAMES.get(self.dtype, f"{self.dtype.name}Tensor")
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        if dtype.startswith("torch.cuda."):
            return to(self, "cuda").type(dtype.replace(".cuda.", "."))
        by_name = {"torch." + n: t for t, n in _TYPE_NAMES.items()}
        if dtype not in by_name:
            raise DTypeError(f"Tensor.type: unknown tensor type {dtype!r}; use one of "
                             f"{', '.join(sorted(by_name))} or a dtype such as cr.float32")
        dtype = by_name[dtype]
    return _converted(self, backend.as_dtype(dtype, "Tensor.type"))


def type_as(self, other):
    return _converted(self, other.dtype)


def cpu(self):
    """The tensor on the CPU (itself when it is there; differentiable, as in PyTorch)."""
    return to(self, "cpu")


def cuda(self, device=None, non_blocking=False):
    """The tensor on a CUDA device (`device`: an index or name; default the current one)."""
    if device is None:
        device = "cuda"
    elif isinstance(device, (builtins.int, np.integer)):
        device = f"cuda:{builtins.int(device)}"
    return to(self, device)


def contiguous(self, memory_format=None):
    """The tensor itself (NumPy handles any memory layout)."""
    return self


def dim(self):
    return self._data.ndim


def nelement(self):
    return self._data.size


def device(self):
    return backend.device_of(self._data)


def is_cuda(self):
    return backend.device_of(self._data).type == "cuda"


def is_cpu(self):
    return builtins.type(self._data) is np.ndarray


def get_device(self):
    """The index of the device the tensor is on; -1 for the CPU (PyTorch's)."""
    index = backend.device_of(self._data).index
    return -1 if index is None else index


def pin_memory(self, device=None):
    """The tensor itself: NumPy's host memory is what copies to a GPU start from (CuPy pins
    its own staging buffers), so pinning changes nothing here."""
    return self


def is_pinned(self, device=None):
    return False


def __array__(self, dtype=None, copy=None):
    """The values as a NumPy array (shared, not copied), so np.asarray(t) and plt.imshow(t)
    work."""
    a = self._data
    if builtins.type(a) is not np.ndarray:
        _not_on_host(self, "np.asarray(tensor)")
    if dtype is not None and a.dtype != dtype:
        return a.astype(dtype)
    return a.copy() if copy else a


def _not_on_host(t, what):
    from ..errors import DeviceError
    raise DeviceError(f"{what}: the tensor is on {t.device}; NumPy arrays live on the host. "
                      "Copy it with .cpu() first (e.g. t.cpu().numpy()).")


def _new(x, array, requires_grad, device):
    """A tensor around the host array `array`, on `device` (default: x's, as in PyTorch)."""
    where = x.device if device is None else backend.check_device(device, "Tensor.new_*")
    out = Tensor._wrap(backend.to_device(array, where))
    return out.requires_grad_() if requires_grad else out


def _new_dtype(x, dtype):
    return x.dtype if dtype is None else backend.as_dtype(dtype, "Tensor.new_*")


def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    """Zeros of shape `size`, with this tensor's dtype unless `dtype` is given."""
    return _new(self, np.zeros(_shape_arg(size), _new_dtype(self, dtype)), requires_grad, device)


def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return _new(self, np.ones(_shape_arg(size), _new_dtype(self, dtype)), requires_grad, device)


def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    """Zeros (see cr.empty) of shape `size`, with this tensor's dtype unless `dtype`."""
    return new_zeros(self, *size, dtype=dtype, device=device, requires_grad=requires_grad)


def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return _new(self, np.full(_shape_arg((size,)), fill_value, _new_dtype(self, dtype)),
                requires_grad, device)


def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    """A new tensor (a copy) of `data`, with this tensor's dtype unless `dtype` is given."""
    if isinstance(data, Tensor):
        data = data._data
    return _new(self, np.array(backend.to_array(data), dtype=_new_dtype(self, dtype)),
                requires_grad, device)


def clone(self):
    return cast(self, self.dtype)


# ----- autograd -----
def retain_grad(self):
    autograd.retain_grad(self)
    return self


def register_hook(self, hook):
    """Call `hook(grad)` each time this tensor's gradient is computed; it may return a
    replacement. Returns a handle whose `.remove()` unregisters it (PyTorch's)."""
    return autograd.register_hook(self, hook)


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
def _inplace(self, update, other, op="in-place update", exact=False, recorded=None,
             needs_old=False):
    """Apply `update(array, operand)` to this tensor's memory and bump its version. Where the
    graph must see it (grad mode, and this tensor, its base or the operand requires grad),
    `recorded(old, other)` (the same update as recorded Tensor operations) is recorded instead
    (ops/inplace.py; `needs_old`: its node reads the old values)."""
    if grad_enabled() and (self.requires_grad or _requires_grad(other) or (
            self._view is not None and self._view[0].requires_grad)):
        if recorded is None:
            raise GraphError(
                f"{op}: in-place operation on a tensor of shape {self.shape} that takes part "
                "in the graph, which cannot record this update. Write it out of place, or "
                "update it inside cr.no_grad().")
        _check_precision(other, self, op, exact)
        _inplace_graph.record(self, recorded, other, op, needs_old)
        if _registry.op_hooks:
            for hook in _registry.op_hooks:
                hook("inplace", update, (self, other), {"op": op}, self)
        return self
    o = other._data if isinstance(other, Tensor) else other
    if exact and backend.is_array(o) and _loses_precision(o.dtype, self._data.dtype):
        raise DTypeError(
            f"{op}: a {o.dtype} operand of shape {o.shape} would be rounded into this "
            f"{self._data.dtype} tensor of shape {self.shape}, silently losing precision. "
            f"Convert it first (other.astype(cr.{self._data.dtype})) or update out of place "
            f"(x = x {_SYMBOL.get(op, '+')} other gives the wider dtype).")
    try:
        update(self._data, o)
    except (TypeError, ValueError) as exc:
        devices = backend.mixed_devices([self._data, o])
        if len(devices) > 1:
            raise backend.mixed_device_error(op, devices) from exc
        error = DTypeError if isinstance(exc, TypeError) else ShapeError
        raise error(f"{op}: cannot update a {self._data.dtype} tensor of shape {self.shape} "
                    f"in place with {_describe(other)}: {exc}. The operand must broadcast "
                    "to the tensor's shape and cast to its dtype; convert it with "
                    ".astype(...) or update out of place.") from exc
    self._counter()[0] += 1
    if _registry.op_hooks:   # cr.compile records the update to replay it
        for hook in _registry.op_hooks:
            hook("inplace", update, (self, other), {"op": op}, self)
    return self


def __iadd__(self, other):
    return self._inplace(lambda d, o: np.add(d, o, out=d, casting="same_kind"), other,
                         "add_", True, _add)


def add_(self, other, *, alpha=1):
    """In place self += alpha · other (PyTorch's add_; alpha scales the other operand).

    >>> import chainrule as cr
    >>> t = cr.tensor([1.0, 2.0])
    >>> t.add_(cr.tensor([1.0, 1.0]), alpha=-0.5).tolist()
    [0.5, 1.5]
    """
    return __iadd__(self, other if alpha == 1 else other * alpha)


def sub_(self, other, *, alpha=1):
    """In place self -= alpha · other (PyTorch's sub_)."""
    return __isub__(self, other if alpha == 1 else other * alpha)


def __isub__(self, other):
    return self._inplace(lambda d, o: np.subtract(d, o, out=d, casting="same_kind"), other,
                         "sub_", True, _sub)


def __imul__(self, other):
    return self._inplace(lambda d, o: np.multiply(d, o, out=d, casting="same_kind"), other,
                         "mul_", True, mul, _requires_grad(other))


def __itruediv__(self, other):
    return self._inplace(lambda d, o: np.true_divide(d, o, out=d, casting="same_kind"), other,
                         "div_", True, div)


def copy_(self, src):
    """Overwrite the values with `src` (broadcast), in place; src may be on another device."""
    return self._inplace(lambda d, o: np.copyto(d, o, casting="same_kind"), _here(src, self),
                         "copy_", recorded=_inplace_graph.overwrite)


def _requires_grad(x):
    return isinstance(x, Tensor) and x.requires_grad


def _check_precision(other, t, op, exact):
    """DTypeError where writing `other` into tensor t would lose precision (the policy above)."""
    o = other._data if isinstance(other, Tensor) else other
    if exact and backend.is_array(o) and _loses_precision(o.dtype, t._data.dtype):
        raise DTypeError(
            f"{op}: a {o.dtype} operand of shape {o.shape} would be rounded into this "
            f"{t._data.dtype} tensor of shape {t.shape}, silently losing precision. "
            f"Convert it first (other.astype(cr.{t._data.dtype})) or update out of place "
            f"(x = x {_SYMBOL.get(op, '+')} other gives the wider dtype).")


def zero_(self):
    return self.copy_(0)


def __setitem__(self, index, value):
    """t[index] = value, in place (bumps the version counter); like every in-place update, not
    on a tensor that requires grad outside cr.no_grad()."""
    index = _plain_index(index, self._data)
    if isinstance(value, Tensor) and _is_region(value, self, index):
        return self    # x[i] += v: the update of the view x[i] already wrote x
    return self._inplace(lambda d, o: d.__setitem__(index, o), value, "setitem",
                         recorded=lambda old, v: _inplace_graph.index_put(old, v, index))


def _is_region(value, t, index):
    """Whether `value` is the view t[index] itself (what `t[index] op= v` assigns back)."""
    if value._view is None or value._vc is not t._vc:
        return False
    try:
        region = t._data[index]
    except (IndexError, TypeError, ValueError):
        return False
    v = value._data
    return (isinstance(region, np.ndarray) and region.shape == v.shape and
            region.strides == v.strides and
            region.__array_interface__["data"][0] == v.__array_interface__["data"][0])


def _plain_index(index, like):
    """An index with its Tensors (integer arrays, boolean masks) as arrays, on the device of
    the array `like` (NOTE: a host index for a device tensor is moved there, as getitem's)."""
    if isinstance(index, tuple):
        return builtins.tuple(_plain_index(i, like) for i in index)
    return backend.beside(index._data if isinstance(index, Tensor) else index, like)


def _here(x, t):
    """A Tensor or array operand `x` moved onto t's device (copies across devices, as
    PyTorch's copy_ makes): for updates that read another device's values explicitly."""
    if not isinstance(x, Tensor):
        return backend.beside(x, t._data)
    if builtins.type(x._data) is np.ndarray and builtins.type(t._data) is np.ndarray:
        return x
    return to(x, t.device)     # x itself when it is there already


def masked_fill_(self, mask, value):
    """Set `value` where `mask` (a bool tensor broadcast to this shape) is True, in place."""
    mask = _here(_compat._bool_mask(mask, "masked_fill_")._data, self)  # NOTE: as an index
    return self._inplace(lambda d, o: np.copyto(d, o, casting="unsafe", where=mask),
                         value, "masked_fill_", recorded=lambda old, v: _inplace_graph.index_put(
                             old, v, np.broadcast_to(mask, old.shape)))


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill in place with normal samples (from `generator`, or the default generator)."""
    draw = _here(backend.rng(generator).normal(mean, std, self.shape), self)
    return self._inplace(lambda d, o: np.copyto(d, o, casting="unsafe"), draw, "normal_",
                         recorded=_inplace_graph.overwrite)


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    """Fill in place with uniform samples on [a, b)."""
    draw = _here(backend.rng(generator).uniform(a, b, self.shape), self)
    return self._inplace(lambda d, o: np.copyto(d, o, casting="unsafe"), draw, "uniform_",
                         recorded=_inplace_graph.overwrite)


_SYMBOL = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}


def _loses_precision(src, dst):
    """True when writing `src` values into `dst` storage would round or wrap them."""
    if np.can_cast(src, dst, "safe"):
        return False
    return not (src.kind in "biu" and dst.kind in "fc")


def _describe(value):
    if isinstance(value, Tensor) or backend.is_array(value):
        return f"a {value.dtype} operand of shape {tuple(value.shape)}"
    return f"{builtins.type(value).__name__} {value!r}"[:80]


# ----- arithmetic (__add__, __sub__, __mul__, __truediv__ and __matmul__ are the op functions
# themselves: one Python call frame less on the hottest operators) -----
def __radd__(self, other):
    return _add(other, self)


def __rsub__(self, other):
    return _sub(other, self)


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


def amax(self, *args, **kwargs):
    """Largest values over `dim` (an int or a tuple), values only."""
    return _kw.amax(self, *args, **kwargs)


def amin(self, *args, **kwargs):
    return _kw.amin(self, *args, **kwargs)


def all(self, *args, **kwargs):
    """A bool tensor: every value non-zero (over `dim`, or all: 0-d), as in PyTorch."""
    return _kw.all(self, *args, **kwargs)


def any(self, *args, **kwargs):
    """A bool tensor: some value non-zero (over `dim`, or all: 0-d), as in PyTorch."""
    return _kw.any(self, *args, **kwargs)


# ----- PyTorch's other methods (ops/compat.py) -----
def log10(self):
    return _compat.log10(self)


def log2(self):
    return _compat.log2(self)


def isnan(self):
    return _compat.isnan(self)


def isinf(self):
    return _compat.isinf(self)


def isfinite(self):
    return _compat.isfinite(self)


def masked_fill(self, mask, value):
    return _compat.masked_fill(self, mask, value)


def repeat(self, *sizes):
    return _compat.repeat(self, *sizes)


def narrow(self, dim, start, length):
    return _compat.narrow(self, dim, start, length)


def gather(self, dim, index):
    return _compat.gather(self, dim, index)


def sort(self, dim=-1, descending=False, stable=False):
    return _compat.sort(self, dim, descending, stable)


def topk(self, k, dim=-1, largest=True, sorted=True):
    return _compat.topk(self, k, dim, largest, sorted)


def histc(self, bins=100, min=0, max=0):
    return _compat.histc(self, bins, min, max)


def add(self, other, alpha=1):
    """self + alpha * other (PyTorch's `add`)."""
    return _add(self, other if alpha == 1 else mul(other, alpha))


def sub(self, other, alpha=1):
    """self - alpha * other."""
    return _sub(self, other if alpha == 1 else mul(other, alpha))


def view_as(self, other):
    return _reshape(self, other.shape)


def expand_as(self, other):
    return _expand(self, other.shape)


# ----- shape -----
def reshape(self, *shape):
    return _reshape(self, _shape_arg(shape))


def flatten(self, start_dim=0, end_dim=-1):
    return _flatten(self, start_dim, end_dim)


def transpose(self, *axes):
    """`transpose()` reverses the axes; `transpose(d0, d1)` swaps two (PyTorch);
    `transpose((…))` permutes (NumPy)."""
    if len(axes) == 2 and builtins.all(isinstance(a, builtins.int) for a in axes):
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
    "astype": astype, "to": to,
    "float": float, "double": double, "half": half,
    "long": long, "int": int, "short": short, "byte": byte, "bool": bool,
    "type": type, "type_as": type_as,
    "clone": clone,
    # devices and layout (memory layout is the array module's business)
    "cpu": cpu, "cuda": cuda, "contiguous": contiguous,
    "device": property(device), "is_cuda": property(is_cuda), "is_cpu": property(is_cpu),
    "get_device": get_device, "pin_memory": pin_memory, "is_pinned": is_pinned,
    "dim": dim, "nelement": nelement,
    "__array__": __array__,
    "new_zeros": new_zeros, "new_ones": new_ones, "new_empty": new_empty,
    "new_full": new_full, "new_tensor": new_tensor,
    # autograd
    "retain_grad": retain_grad,
    "register_hook": register_hook,
    "backward": backward,
    # in-place updates
    "_inplace": _inplace,
    "__iadd__": __iadd__, "add_": add_,
    "__isub__": __isub__, "sub_": sub_,
    "__imul__": __imul__, "mul_": __imul__,
    "__itruediv__": __itruediv__, "div_": __itruediv__,
    "copy_": copy_, "fill_": copy_,
    "zero_": zero_,
    "__setitem__": __setitem__,
    "masked_fill_": masked_fill_, "normal_": normal_, "uniform_": uniform_,
    # arithmetic
    "__add__": _add, "__radd__": __radd__,
    "__sub__": _sub, "__rsub__": __rsub__,
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
    "eq": __eq__, "ne": __ne__, "lt": __lt__, "le": __le__, "gt": __gt__, "ge": __ge__,
    # elementwise
    "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "sin": sin, "cos": cos, "tanh": tanh,
    "sigmoid": sigmoid, "relu": relu, "pow": pow,
    "clip": clip, "clamp": clip,
    "matmul": matmul, "mm": matmul,
    "add": add, "sub": sub, "mul": mul, "div": div, "neg": __neg__,
    "log10": log10, "log2": log2,
    "isnan": isnan, "isinf": isinf, "isfinite": isfinite,
    "masked_fill": masked_fill,
    # reductions
    "sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std, "norm": norm,
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
    "argmax": argmax, "argmin": argmin,
    "amax": amax, "amin": amin, "all": all, "any": any,
    "sort": sort, "topk": topk, "histc": histc,
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
    "view_as": view_as, "expand_as": expand_as,
    "repeat": repeat, "narrow": narrow, "gather": gather,
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
