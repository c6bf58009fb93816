"""Functions that make new tensors (PyTorch's names and defaults)."""
import numpy as np

from . import backend
from .errors import DTypeError, ShapeError
from .tensor import Tensor


def _shape(size, op="tensor"):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise DTypeError(f"{op}: size {tuple(size)!r} holds a {type(n).__name__}; sizes are "
                             "ints, e.g. cr.zeros(2, 3) or cr.zeros((2, 3)).")
        if n < 0:
            raise ShapeError(f"{op}: size {tuple(size)} has a negative dimension; every "
                             "dimension must be >= 0.")
    return tuple(size)


def _make(array, requires_grad, name=None):
    t = Tensor._wrap(array)
    t.name = name
    if requires_grad:
        t.requires_grad_()
    return t


def _dtype(dtype):
    if dtype is None:
        return backend.get_default_dtype()
    return backend.as_dtype(dtype, "tensor")


# ----- devices. None stands for the CPU, so the CPU path is NumPy exactly as before.
# NOTE: random draws are made on the host by chainrule's NumPy generator and then copied to
# the device, so a seed gives the same numbers on every device; deterministic arrays (zeros,
# arange, eye...) are made by the device's own module.
# NOTE: device=None means the default device (`set_default_device`, `with cr.device(...)`),
# as in PyTorch 2, for every function here but the `*_like` ones (they follow their tensor),
# `multinomial` (its input's device) and `from_numpy` (shares host memory). `normal` with a
# tensor mean or std follows that tensor; with numbers it uses the default device (PyTorch
# leaves torch.normal out of its default-device list, so it would make those on the CPU).
# The default is read with one ContextVar call; it is None while it is the CPU.
_default = backend.default_device


def _device(device, op):
    """The device to create on (a cr.device whose library is loaded), or None for the CPU."""
    if device is None:
        device = _default()
        if device is None:
            return None
        op = f"{op} (on the default device, set_default_device)"
    dev = backend.check_device(device, op)
    return None if dev.type == "cpu" else dev


def _like_device(t, device, op):
    """`*_like`'s device: `device` if given, else t's (as in PyTorch)."""
    if device is not None:
        return _device(device, op)
    data = getattr(t, "_data", t)
    if type(data) is np.ndarray or not backend.is_array(data):
        return None
    return backend.device_of(data)


def _xp(dev):
    return np if dev is None else backend.module_for(dev)


def _placed(array, dev):
    """`array` on `dev` (None: where it is): a host draw is copied there; an array the
    device's module made moves only when `dev` names another index than the current one."""
    return array if dev is None else backend.to_device(array, dev)


def tensor(data, dtype=None, requires_grad=False, name=None, device=None):
    """A new tensor from `data`. Python floats become float32 (the default dtype), NumPy arrays
    keep their dtype; `name` is what `explain` calls it.

    >>> import chainrule as cr
    >>> cr.tensor([1.0, 2.0]).dtype
    dtype('float32')
    """
    if isinstance(data, Tensor):
        data = data._data
    if type(data) is not np.ndarray and backend.is_array(data):   # a device array: a copy there
        if device is None:   # the default device, unless that is the CPU (as in PyTorch)
            device = _default()
        dev = backend.device_of(data) if device is None else backend.check_device(device,
                                                                                  "tensor")
        dtype = data.dtype if dtype is None else backend.as_dtype(dtype, "tensor")
        copied = backend.to_device(data.astype(dtype, copy=True), dev)
        return Tensor(copied, dtype=dtype, requires_grad=requires_grad, name=name)
    dev = _device(device, "tensor")
    array = np.array(backend.to_array(data, dtype))
    if dev is None:
        return Tensor(array, requires_grad=requires_grad, name=name)
    return Tensor(_placed(array, dev), dtype=array.dtype, requires_grad=requires_grad, name=name)


def zeros(*size, dtype=None, requires_grad=False, device=None):
    """A tensor of zeros of shape `size` (ints, or one tuple), in the default dtype unless `dtype`.

    >>> import chainrule as cr
    >>> cr.zeros(2, 3).shape
    (2, 3)
    >>> cr.zeros((2,), dtype=cr.float64).tolist()
    [0.0, 0.0]
    """
    dev = _device(device, "zeros")
    return _make(_placed(_xp(dev).zeros(_shape(size, "zeros"), _dtype(dtype)), dev),
                 requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None):
    """A tensor of ones of shape `size` (ints, or one tuple), in the default dtype unless `dtype`.

    >>> import chainrule as cr
    >>> cr.ones(2, requires_grad=True).tolist()
    [1.0, 1.0]
    """
    dev = _device(device, "ones")
    return _make(_placed(_xp(dev).ones(_shape(size, "ones"), _dtype(dtype)), dev),
                 requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    """A tensor of shape `size` filled with the single number `fill_value`.

    >>> import chainrule as cr
    >>> cr.full((2, 2), 7.0).tolist()
    [[7.0, 7.0], [7.0, 7.0]]
    """
    return _full(size, fill_value, dtype, requires_grad, _device(device, "full"))


def _full(size, fill_value, dtype, requires_grad, dev):
    """`full` on the device `dev` already chosen (None: the CPU)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value._data
    size, fill_value = _shape((size,), "full"), backend.to_array(fill_value)
    if fill_value.ndim:
        raise ShapeError(f"full: fill_value must be a single number, got an array of shape "
                         f"{fill_value.shape}; use cr.tensor(...).expand({size}) to repeat one.")
    if dev is None and type(fill_value) is np.ndarray:
        return _make(np.full(size, fill_value, _dtype(dtype)), requires_grad)
    value = backend.to_host(fill_value).item()   # a Python number fills on any device
    return _make(_placed(_xp(dev).full(size, value, _dtype(dtype)), dev), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    """Zeros with the shape and (unless `dtype` is given) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.zeros_like(cr.tensor([[1.0, 2.0]])).tolist()
    [[0.0, 0.0]]
    """
    dev = _like_device(t, device, "zeros_like")
    return _make(_placed(_xp(dev).zeros(t.shape, _dtype(dtype or t.dtype)), dev), requires_grad)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    """Ones with the shape and (unless `dtype` is given) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.ones_like(cr.tensor([5, 6])).tolist()
    [1, 1]
    """
    dev = _like_device(t, device, "ones_like")
    return _make(_placed(_xp(dev).ones(t.shape, _dtype(dtype or t.dtype)), dev), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    """Like PyTorch: integers give int64, any float gives the default float dtype.

    >>> import chainrule as cr
    >>> cr.arange(4).tolist()
    [0, 1, 2, 3]
    >>> cr.arange(0.0, 1.0, 0.25).tolist()
    [0.0, 0.25, 0.5, 0.75]
    """
    dev = _device(device, "arange")
    if end is None:
        start, end = 0, start
    if dtype is None and any(isinstance(v, float) for v in (start, end, step)):
        dtype = backend.get_default_dtype()
    dtype = None if dtype is None else _dtype(dtype)
    return _make(_placed(_xp(dev).arange(start, end, step, dtype=dtype), dev), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    """`steps` evenly spaced values from `start` to `end`, both included.

    >>> import chainrule as cr
    >>> cr.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    dev = _device(device, "linspace")
    return _make(_placed(_xp(dev).linspace(start, end, steps, dtype=_dtype(dtype)), dev),
                 requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    """The n x m identity matrix (m defaults to n).

    >>> import chainrule as cr
    >>> cr.eye(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    dev = _device(device, "eye")
    return _make(_placed(_xp(dev).eye(n, m, dtype=_dtype(dtype)), dev), requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None, device=None):
    """Uniform on [0, 1), from the generator that `manual_seed` seeds (or `generator`, a
    cr.Generator).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> [round(v, 4) for v in cr.rand(3).tolist()]
    [0.637, 0.2698, 0.041]
    """
    dev = _device(device, "rand")
    values = backend.rng(generator).random(_shape(size, "rand")).astype(_dtype(dtype))
    return _make(_placed(values, dev), requires_grad)


def randn(*size, dtype=None, requires_grad=False, generator=None, device=None):
    """Standard normal, from the generator that `manual_seed` seeds (or `generator`, a
    cr.Generator).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> [round(v, 4) for v in cr.randn(3).tolist()]
    [0.1257, -0.1321, 0.6404]
    """
    dev = _device(device, "randn")
    values = backend.rng(generator).standard_normal(_shape(size, "randn")).astype(_dtype(dtype))
    return _make(_placed(values, dev), requires_grad)


def randint(*args, size=None, dtype=None, generator=None, requires_grad=False, device=None,
            low=None, high=None):
    """Random integers in [low, high) (high excluded) of shape `size`, int64 by default:
    `randint(low, high, size)` or `randint(high, size)` (low = 0), as in PyTorch.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> cr.randint(0, 10, (5,)).tolist()
    [8, 6, 5, 2, 3]
    >>> cr.randint(3, (2,), generator=cr.Generator().manual_seed(0)).shape
    (2,)
    """
    dev = _device(device, "randint")
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if len(args) == 2 and low is None and high is None:
        low, high = args
    elif len(args) == 1 and high is None:
        low, high = (0 if low is None else low), args[0]
    elif not args and high is not None:
        low = 0 if low is None else low
    else:
        raise TypeError("randint: call it as randint(low, high, size) or randint(high, size), "
                        f"e.g. cr.randint(0, 10, (3,)); got {len(args)} positional argument(s)")
    if size is None:
        raise TypeError("randint: missing size (a tuple such as (3,) or (2, 4))")
    size = _shape((size,), "randint")
    if not low < high:
        raise ShapeError(f"randint: low={low} must be below high={high} (high is exclusive).")
    dtype = np.int64 if dtype is None else _dtype(dtype)
    values = backend.rng(generator).integers(low, high, size, dtype=np.int64)
    return _make(_placed(values.astype(dtype, copy=False), dev), requires_grad)


def randperm(n, generator=None, dtype=None, requires_grad=False, device=None):
    """A random permutation of 0 .. n-1 (int64 unless `dtype`).

    >>> import chainrule as cr
    >>> sorted(cr.randperm(4).tolist())
    [0, 1, 2, 3]
    """
    dev = _device(device, "randperm")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise DTypeError(f"randperm: n must be an int >= 0, got {n!r}")
    order = backend.rng(generator).permutation(int(n))
    return _make(_placed(order.astype(np.int64 if dtype is None else _dtype(dtype)), dev),
                 requires_grad)


def rand_like(t, dtype=None, requires_grad=False, generator=None, device=None):
    """Uniform on [0, 1) with the shape and (unless `dtype`) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.rand_like(cr.zeros(2, 3)).shape
    (2, 3)
    """
    dev = _like_device(t, device, "rand_like")
    values = backend.rng(generator).random(t.shape).astype(_dtype(dtype or t.dtype))
    return _make(_placed(values, dev), requires_grad)


def randn_like(t, dtype=None, requires_grad=False, generator=None, device=None):
    """Standard normal with the shape and (unless `dtype`) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.randn_like(cr.zeros(2, 3)).dtype
    dtype('float32')
    """
    dev = _like_device(t, device, "randn_like")
    values = backend.rng(generator).standard_normal(t.shape).astype(_dtype(dtype or t.dtype))
    return _make(_placed(values, dev), requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    """`fill_value` everywhere, with the shape and (unless `dtype`) the dtype of `t`.

    >>> import chainrule as cr
    >>> cr.full_like(cr.zeros(2), 7).tolist()
    [7.0, 7.0]
    """
    dev = _like_device(t, device, "full_like")   # t's device; never the default one
    return _full(t.shape, fill_value, dtype or t.dtype, requires_grad, dev)


def empty(*size, dtype=None, requires_grad=False, device=None):
    """PyTorch's `empty`: chainrule fills it with zeros (uninitialised memory is a hazard and
    costs no less in NumPy).

    >>> import chainrule as cr
    >>> cr.empty(2, 3).shape
    (2, 3)
    """
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, device=device)


def empty_like(t, dtype=None, requires_grad=False, device=None):
    """Zeros shaped like `t` (see `empty`).

    >>> import chainrule as cr
    >>> cr.empty_like(cr.ones(2)).tolist()
    [0.0, 0.0]
    """
    return zeros_like(t, dtype=dtype, requires_grad=requires_grad, device=device)


def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, requires_grad=False,
           device=None):
    """Normal samples with `mean` and `std` (numbers with `size`, or tensors broadcast together).

    >>> import chainrule as cr
    >>> cr.normal(2.0, 0.5, size=(3,)).shape
    (3,)
    """
    dev = _normal_device(mean, std, device)
    # computed on the host (the draw is made there anyway), then copied: the same numbers
    # on every device
    m = backend.to_host(mean._data) if isinstance(mean, Tensor) else np.asarray(mean)
    sd = backend.to_host(std._data) if isinstance(std, Tensor) else np.asarray(std)
    if (sd < 0).any():
        raise ShapeError(f"normal: std must be >= 0, got {std!r}"[:200])
    if size is None:
        if m.ndim == 0 and sd.ndim == 0:
            raise ShapeError("normal: with a number for both mean and std, pass size=")
        size = np.broadcast_shapes(m.shape, sd.shape)
    else:
        size = _shape((size,), "normal")
    if dtype is None:   # a float tensor's dtype, else the default
        floats = [t.dtype for t in (mean, std) if isinstance(t, Tensor) and t.dtype.kind == "f"]
        dtype = floats[0] if floats else backend.get_default_dtype()
    z = backend.rng(generator).standard_normal(size)
    return _make(_placed((m + sd * z).astype(_dtype(dtype)), dev), requires_grad)


def _normal_device(mean, std, device):
    """`normal`'s device: `device`, else that of a tensor mean or std (as in PyTorch)."""
    if device is not None:
        return _device(device, "normal")
    found = [backend.device_of(t._data) for t in (mean, std) if isinstance(t, Tensor)]
    if len(set(found)) > 1:
        raise backend.mixed_device_error("normal", found)
    if not found:
        return _device(None, "normal")   # numbers: the default device
    return None if found[0].type == "cpu" else found[0]


def multinomial(input, num_samples, replacement=False, generator=None):
    """`num_samples` category indices per row of `input` (non-negative weights, 1-D or 2-D,
    not necessarily summing to 1), with or without replacement, as int64 (PyTorch's
    `torch.multinomial`).

    >>> import chainrule as cr
    >>> cr.multinomial(cr.tensor([0.0, 1.0, 0.0]), 2, replacement=True).tolist()
    [1, 1]
    """
    # drawn on the host from chainrule's generator; the indices go back to input's device
    data = input._data if isinstance(input, Tensor) else backend.to_array(input)
    dev = _like_device(data, None, "multinomial")
    w = backend.to_host(data).astype(np.float64)
    if w.ndim not in (1, 2) or w.shape[-1] == 0:
        raise ShapeError(f"multinomial: input must be a 1-D or 2-D tensor of weights with at least "
                         f"one category, got shape {w.shape}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
            or num_samples <= 0:
        raise ShapeError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ShapeError("multinomial: probability tensor contains either inf, nan or an "
                         "element < 0; pass non-negative finite weights")
    rows = w.reshape(-1, w.shape[-1])
    total = rows.sum(axis=1)
    if (total <= 0).any():
        raise ShapeError("multinomial: invalid distribution (a row's weights sum to 0); every "
                         "row needs a positive weight")
    if not replacement and ((rows > 0).sum(axis=1) < num_samples).any():
        raise ShapeError(f"multinomial: cannot draw {num_samples} samples without replacement "
                         f"from a row with fewer non-zero weights ({int((rows > 0).sum(axis=1).min())}); "
                         "pass replacement=True or fewer samples")
    rng = backend.rng(generator)
    out = np.stack([rng.choice(rows.shape[1], int(num_samples), replace=bool(replacement),
                               p=row / row.sum()) for row in rows]).astype(np.int64)
    return _make(_placed(out.reshape(w.shape[:-1] + (int(num_samples),)), dev), False)


def from_numpy(array):
    """A tensor sharing `array`'s memory (writes through either show in both); keeps the
    dtype, as PyTorch's `from_numpy`.

    >>> import chainrule as cr, numpy as np
    >>> a = np.zeros(2); t = cr.from_numpy(a); a[0] = 5
    >>> t.tolist(), t.dtype
    ([5.0, 0.0], dtype('float64'))
    """
    if not isinstance(array, np.ndarray):
        raise DTypeError(f"from_numpy: expected a NumPy ndarray, got {type(array).__name__}; "
                         "use cr.tensor(data) for lists and numbers")
    return Tensor._wrap(backend.to_array(array))


def as_tensor(data, dtype=None, device=None):
    """`data` as a tensor, sharing memory where it can (a Tensor of that dtype and device is
    returned as is, a NumPy array of that dtype is wrapped, not copied); lists and numbers are
    copied. `device` moves it (a copy, as `.to(device)`); without it, a non-CPU default device
    (`set_default_device`) does the same, as in PyTorch.

    >>> import chainrule as cr, numpy as np
    >>> a = np.ones(2, dtype=np.float32)
    >>> cr.as_tensor(a).numpy() is a
    True
    """
    if device is None:
        device = _default()   # None: the CPU, where nothing moves
    dev = None if device is None else backend.check_device(device, "as_tensor")
    if isinstance(data, Tensor):
        out = data if dtype is None or data.dtype == _dtype(dtype) else data.to(_dtype(dtype))
        return out if dev is None else out.to(dev)
    if type(data) is np.ndarray or backend.is_array(data):   # keeps its dtype (and memory)
        array = data if dtype is None else data.astype(_dtype(dtype), copy=False)
    else:
        array = backend.to_array(data, None if dtype is None else _dtype(dtype))
    return Tensor._wrap(array if dev is None else backend.to_device(array, dev))
