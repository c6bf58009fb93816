"""The array module, and the one place the compute core gets it from: `backend.np` is the
namespace every op, rule, the engine and the optimizers call (NumPy today; a second backend
such as CuPy is plugged in here). Also array creation, the dtype policy, the random generator
and the BLAS thread count. Host-side code (data, io, explain, train) may use NumPy directly.

Policy (PyTorch's): Python floats become the default dtype (float32 unless changed with
`set_default_dtype`), Python ints become int64, bools stay bool, and a NumPy array keeps its
dtype. A Python scalar mixed with a tensor takes the tensor's dtype, so float32 stays float32.
"""
import contextvars

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32
_rng = np.random.default_rng()


def set_default_dtype(dtype):
    """Set the dtype that Python floats (and `randn`, `zeros`, ...) become: float32 or float64.

    >>> import chainrule as cr
    >>> cr.set_default_dtype(cr.float64)
    >>> cr.tensor(1.0).dtype
    dtype('float64')
    >>> cr.set_default_dtype(cr.float32)
    """
    global _default_dtype
    dtype = as_dtype(dtype, "set_default_dtype")
    if dtype.kind != "f":
        from .errors import DTypeError
        raise DTypeError(f"set_default_dtype: {dtype} is not a floating dtype; use float32 or float64")
    _default_dtype = dtype


def get_default_dtype():
    """The dtype Python floats become (float32 unless changed with `set_default_dtype`).

    >>> import chainrule as cr
    >>> cr.get_default_dtype()
    dtype('float32')
    """
    return _default_dtype


def is_float(dtype):
    return dtype.kind == "f"


def as_dtype(dtype, op="tensor"):
    """`dtype` (a NumPy dtype, a type, a name) as a NumPy dtype, or a DTypeError saying what is
    wrong; bfloat16 is refused by name (see `_bfloat16_error`)."""
    from .errors import DTypeError
    if _names_bfloat16(dtype):
        raise _bfloat16_error(op)
    try:
        out = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{op}: {dtype!r} is not a dtype ({exc}); use cr.float32, cr.float64, "
                         "cr.int64 or another NumPy dtype.") from exc
    if out.name == "bfloat16":
        raise _bfloat16_error(op)
    return out


def _names_bfloat16(dtype):
    """True for "bfloat16", "bf16", torch.bfloat16, ml_dtypes.bfloat16 and its dtype."""
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    return isinstance(name, str) and name.lower().rsplit(".", 1)[-1] in ("bfloat16", "bf16")


def _bfloat16_error(op):
    from .errors import DTypeError
    return DTypeError(
        f"{op}: bfloat16 is not supported: chainrule computes with NumPy, which has no "
        "bfloat16 arithmetic (extension types such as ml_dtypes' store it, but NumPy's "
        "reductions and BLAS would not compute in it correctly). Use cr.float16 (half "
        "precision; sums and means accumulate in float32, as in PyTorch) or cr.float32, and "
        "convert bfloat16 data to float32 before making a tensor.")


def to_array(data, dtype=None):
    """Turn `data` (array, nested lists, scalar) into an ndarray under the dtype policy."""
    if dtype is not None and (not isinstance(dtype, np.dtype) or dtype.kind == "V"):
        dtype = as_dtype(dtype)
    try:
        if isinstance(data, np.ndarray) or is_array(data):   # host or device: stays there
            arr = data if dtype is None else data.astype(dtype, copy=False)
        else:
            arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _conversion_error(data, dtype, exc) from exc
    if (dtype is None and arr.dtype == float64 and not isinstance(data, (np.ndarray, np.generic))
            and not is_array(data)):   # an array keeps its dtype, on any device
        arr = _to_default_float(arr)
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise _conversion_error(data, dtype, None)
    return arr


def _to_default_float(arr):
    """Python floats into the default dtype, refusing values it cannot hold (1e300 would
    silently become inf in float32)."""
    with np.errstate(over="ignore"):
        out = arr.astype(_default_dtype, copy=False)
    if out is not arr and np.isinf(out).any() and not np.isinf(arr).any():
        from .errors import DTypeError
        big = float(np.max(np.abs(arr)))
        raise DTypeError(f"tensor: the value {big:.4g} does not fit in the default dtype "
                         f"{_default_dtype} (it would become inf); pass dtype=cr.float64 or "
                         "scale the data.")
    return out


_NUMERIC_KINDS = "biufc"  # bool, ints, floats, complex: strings, objects, dates are refused


def _conversion_error(data, dtype, exc):
    """A clear error for data that cannot become a numeric array (ragged lists, strings, None)."""
    from .errors import DTypeError, ShapeError
    if _names_bfloat16(getattr(data, "dtype", None)):
        return _bfloat16_error("tensor")
    what = f"{type(data).__name__} {data!r}"[:120]
    if exc is not None and "inhomogeneous" in str(exc):
        return ShapeError(f"tensor: cannot make a tensor from the ragged nested list {what}: "
                          f"{str(exc).rstrip('.')}. Every row must have the same length; pad the rows first.")
    target = "" if dtype is None else f" of dtype {dtype}"
    reason = f": {str(exc).rstrip('.')}" if exc is not None else ""
    return DTypeError(f"tensor: cannot make a numeric tensor{target} from {what}{reason}. "
                      "Tensors hold numbers only; pass numbers, nested lists of numbers, a "
                      "NumPy array or a Tensor (and a NumPy dtype such as cr.float32).")


def scalar_array(value, like_dtype):
    """A 0-d array for a Python scalar used beside a tensor of `like_dtype`."""
    if like_dtype.kind == "f":
        dtype = like_dtype
    elif isinstance(value, float):
        dtype = _default_dtype
    elif isinstance(value, (bool, np.bool_)):
        dtype = like_dtype
    else:
        dtype = like_dtype if like_dtype.kind in "iu" else int64
    try:
        return np.asarray(value, dtype=dtype)
    except OverflowError:
        return np.asarray(_wrap_int(value, dtype), dtype=dtype)


def _wrap_int(value, dtype):
    """NOTE: a Python int outside an integer tensor's range wraps modulo 2^bits, as in PyTorch
    (uint8 + (-1) adds 255, uint8 * 300 multiplies by 44); one outside int64 is an error."""
    if not -2 ** 63 <= value < 2 ** 63:
        from .errors import DTypeError
        raise DTypeError(f"the integer {value} does not fit in int64, the widest integer a "
                         "tensor holds; use a float (e.g. float(x)) or a smaller number.")
    bits = dtype.itemsize * 8
    value %= 2 ** bits
    if dtype.kind == "i" and value >= 2 ** (bits - 1):
        value -= 2 ** bits
    return value


def manual_seed(seed):
    """Seed chainrule's random generator (rand, randn, dropout, init, data shuffling).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> first = cr.randn(2).tolist()
    >>> cr.manual_seed(0)
    >>> cr.randn(2).tolist() == first
    True
    """
    global _rng
    _rng = np.random.default_rng(seed)


def rng(generator=None):
    """The NumPy generator to draw from: `generator`'s (a `Generator`, or a NumPy Generator),
    else the default one that `manual_seed` seeds."""
    if generator is None:
        return _rng
    if isinstance(generator, Generator):
        return generator._numpy()
    if isinstance(generator, np.random.Generator):
        return generator
    from .errors import DTypeError
    raise DTypeError(f"generator= must be a cr.Generator (or a NumPy Generator), got "
                     f"{type(generator).__name__}")


class Generator:
    """A random stream of its own (PyTorch's `torch.Generator`): pass it as `generator=` to
    randn, rand, randint, randperm, multinomial, random_split, DataLoader, the init functions.
    Its draws never move the default generator that `manual_seed` seeds, and vice versa.

    NOTE: the numbers differ from PyTorch's for the same seed (chainrule draws with NumPy's
    PCG64); only the reproducibility is the same.

    >>> import chainrule as cr
    >>> g = cr.Generator().manual_seed(3)
    >>> a = cr.randn(2, generator=g)
    >>> cr.randn(2, generator=cr.Generator().manual_seed(3)).tolist() == a.tolist()
    True
    """

    def __init__(self, device="cpu"):
        as_device(device, "Generator")   # draws are made on the host and copied to a device
        self._rng = None
        self._seed = None
        self.seed()

    def _numpy(self):
        return self._rng

    @property
    def device(self):
        return _CPU

    def manual_seed(self, seed):
        """Restart the stream from `seed` (an int); returns the generator itself."""
        self._seed = _as_seed(seed, "Generator.manual_seed")
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self):
        """Restart from a fresh non-deterministic seed; returns that seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % 2 ** 63))
        return self._seed

    def initial_seed(self):
        """The seed the stream last started from."""
        return self._seed

    def get_state(self):
        """The stream's state (a dict, NumPy's bit-generator state), for `set_state`."""
        return self._numpy().bit_generator.state

    def set_state(self, state):
        self._numpy().bit_generator.state = state
        return self

    def __repr__(self):
        return f"<chainrule.Generator seed={self._seed}>"


class _DefaultGenerator(Generator):
    """`cr.default_generator`: the stream `manual_seed` seeds, as a Generator object."""

    def __init__(self):
        self._seed = None

    def _numpy(self):
        return _rng

    def manual_seed(self, seed):
        manual_seed(seed)
        self._seed = _as_seed(seed, "manual_seed")
        return self


def _as_seed(seed, op):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        from .errors import DTypeError
        raise DTypeError(f"{op}: the seed must be an int, got {type(seed).__name__} {seed!r}")
    return int(seed) % 2 ** 64   # negative seeds wrap, as in PyTorch


default_generator = _DefaultGenerator()


# ---------------------------------------------------------------- devices
# A device is a (type, index) pair; each type computes with one array library, its "kind":
# NumPy for "cpu", CuPy for "cuda" (chainrule.devices.cuda, loaded on first use so that
# `import chainrule` never imports CuPy), and "check" (chainrule.devices.check): NumPy arrays
# in a wrapper that refuses host-only calls the way CuPy does, so the CPU test suite proves
# the compute core never leaves its array module. The core creates arrays with `xp_of(like)`
# or `module_for(device)`; everything else goes through NumPy's dispatch protocols, which
# CuPy and the check arrays implement.
DEVICE_TYPES = ("cpu", "cuda", "check")


class ArrayKind:
    """One array library as a device type: its module (`xp`), array type, and the copies to and
    from the host. `index_of(array)` is the device index an array lives on; `special` maps
    a function NumPy lacks (erf) to the library's own, where NumPy's fallback would not do."""

    def __init__(self, name, xp, array_type, to_device, to_host, index_of, root=None,
                 synchronize=None, count=None, special=None):
        self.name, self.xp, self.array_type = name, xp, array_type
        self.special = special or {}
        self.to_device, self.to_host, self.index_of = to_device, to_host, index_of
        self.root = root or base_root
        self.synchronize = synchronize or (lambda index: None)
        self.count = count or (lambda: 1)


def base_root(a):
    """The array that owns `a`'s memory (views share it): the end of its chain of bases."""
    while True:
        b = a.base
        if b is None:
            return a
        if not is_array(b):
            return b
        a = b


_CPU_KIND = ArrayKind("cpu", np, np.ndarray, lambda a, index: a, lambda a: a, lambda a: None)
_KINDS = {"cpu": _CPU_KIND}
_BY_TYPE = {np.ndarray: _CPU_KIND}
ARRAY_TYPES = (np.ndarray,)


def register_kind(kind):
    """Make `kind` (an ArrayKind) the array library of device type `kind.name`."""
    global ARRAY_TYPES
    _KINDS[kind.name] = kind
    _BY_TYPE[kind.array_type] = kind
    ARRAY_TYPES = tuple(_BY_TYPE)


def kind(type_name, op="device"):
    """The ArrayKind of a device type, loading its library on first use (a DeviceError saying
    how to install it when it cannot load)."""
    found = _KINDS.get(type_name)
    if found is None:
        import importlib
        found = importlib.import_module(f"chainrule.devices.{type_name}").load(op)
        register_kind(found)
    return found


def is_array(x):
    """True for an array of any loaded device kind (a NumPy, CuPy or check array)."""
    return isinstance(x, ARRAY_TYPES)


def kind_of(array):
    if type(array) is np.ndarray:
        return _CPU_KIND
    found = _BY_TYPE.get(type(array))
    if found is None:
        for t, k in _BY_TYPE.items():
            if isinstance(array, t):
                return k
        return _CPU_KIND       # NumPy scalars and array subclasses live on the host
    return found


def xp_of(array):
    """The array module `array` belongs to: where the core creates arrays to combine with it."""
    return np if type(array) is np.ndarray else kind_of(array).xp


def device_of(array):
    """The device an array lives on (cr.device)."""
    if type(array) is np.ndarray:
        return _CPU
    k = kind_of(array)
    return _CPU if k is _CPU_KIND else device(k.name, k.index_of(array))


def module_for(dev):
    """The array module of device `dev` (a cr.device)."""
    return np if dev.type == "cpu" else kind(dev.type).xp


def already_on(here, dev):
    """Whether data on device `here` is on `dev` already (`dev` without an index: any device
    of its type, as "cuda" names the current GPU)."""
    return here == dev or (dev.type == here.type and dev.index is None)


def to_device(array, dev):
    """`array` on device `dev` (itself when it is already there)."""
    here = device_of(array)
    if already_on(here, dev):
        return array
    host = kind_of(array).to_host(array) if here.type != "cpu" else array
    return host if dev.type == "cpu" else kind(dev.type).to_device(host, dev.index)


def to_host(array):
    """`array` as a NumPy array (a copy from a device; the array itself on the CPU)."""
    return array if type(array) is np.ndarray else kind_of(array).to_host(array)


def memory_root(array):
    """The object owning `array`'s memory, so that two arrays can be tested for sharing it."""
    return kind_of(array).root(array)


def beside(array, like):
    """`array` on the device of the array `like`: itself when it is there already (or is not
    an array: a slice, a number), else a copy. For host data meeting device data: an index,
    a mask, labels, a random draw, a loaded value."""
    if (type(array) is np.ndarray and type(like) is np.ndarray) or not is_array(array):
        return array
    return to_device(array, device_of(like))


def scalar_on(value, like):
    """A 0-d array holding the host scalar (or 0-d host array) `value`, on `like`'s device."""
    return value if type(like) is np.ndarray else beside(np.asarray(value), like)


def mixed_devices(arrays):
    """The distinct devices of `arrays`, in order of appearance (one entry when all agree)."""
    seen = []
    for a in arrays:
        if is_array(a):
            d = device_of(a)
            if d not in seen:
                seen.append(d)
    return seen


def mixed_device_error(op, devices):
    from .errors import DeviceError
    names = " and ".join(str(d) for d in devices)
    return DeviceError(f"{op}: expected all tensors to be on the same device, but found at least "
                       f"two devices, {names}. Move them to one device first, e.g. "
                       f"x.to({str(devices[0])!r}) or y.to(x.device).")


class device:
    """Where a tensor lives and computes: `cr.device("cpu")` (NumPy), `cr.device("cuda")` or
    `"cuda:1"` (CuPy, from the optional extra `chainrule[cuda]`), or `"check"` (NumPy arrays
    that refuse host-only calls as a GPU library does: for testing that code runs on a GPU).
    Making a device object never loads its library; using it (a tensor on it) does.
    As a context manager (`with cr.device("check"):`) it is the default device inside the
    block (see `set_default_device`), as PyTorch's `with torch.device(...)`.

    >>> import chainrule as cr
    >>> cr.device("cpu"), str(cr.tensor(1.0).device), str(cr.device("cuda", 1))
    (device(type='cpu'), 'cpu', 'cuda:1')
    >>> with cr.device("check"):
    ...     x = cr.ones(2)
    >>> str(x.device), str(cr.ones(2).device)
    ('check:0', 'cpu')
    """

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        spec = str(type)
        kind_name, colon, number = spec.partition(":")
        if colon:
            if index is not None or not number.isdigit():
                raise _device_error(spec, "device")
            index = int(number)
        if kind_name not in DEVICE_TYPES:
            raise _device_error(spec, "device")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)
                                  or index < 0):
            raise _device_error(f"{kind_name}:{index}", "device")
        self.type, self.index = kind_name, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{extra})"

    def __eq__(self, other):
        return (isinstance(other, device) and other.type == self.type
                and other.index == self.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))

    def __enter__(self):
        """`with cr.device("check"):` makes this the default device inside the block (see
        `set_default_device`); leaving it, by an exception too, restores the one before."""
        new = _validated_default(self)
        _device_stack.set(_device_stack.get() + (_default_device.get(),))
        _set_default(new)
        return self

    def __exit__(self, *exc):
        stack = _device_stack.get()
        _default_device.set(stack[-1])
        _device_stack.set(stack[:-1])
        return False


_CPU = device("cpu")

# ----- the default device (PyTorch 2's `torch.set_default_device`, `with torch.device(...)`):
# where creation functions (cr.zeros, cr.tensor, cr.randn, ...) and layers (nn.Linear, ...)
# put what they make when given no device=.
# NOTE: per thread, as grad mode (grad_mode.py) and as PyTorch's, whose default device is a
# thread-local: a ContextVar, so a new thread starts on the CPU and, beyond PyTorch, each
# asyncio task has its own. The CPU is stored as None, so that a creation function's whole
# extra cost on the CPU is one ContextVar read (one C call) and an `is None` test.
# `with dev:` keeps the devices to restore in a second ContextVar, as an immutable tuple (a
# stack): nested and re-entered blocks, and one device object used by two threads, unwind
# correctly.
_default_device = contextvars.ContextVar("chainrule_default_device", default=None)
_device_stack = contextvars.ContextVar("chainrule_default_device_stack", default=())
default_device = _default_device.get     # the hot path: None for the CPU, else a cr.device
_set_default = _default_device.set


def _validated_default(value):
    """`value` as what the default-device variable stores: None for the CPU, else a cr.device.
    The name is checked now (an unknown device type raises here); the device's library is
    loaded when a tensor is first made there, as in PyTorch (so "cuda" without CuPy raises
    DeviceError, with the install line, at the first cr.zeros(...), not here)."""
    dev = as_device(value, "set_default_device")
    if dev.type == "cpu":
        check_device(dev, "set_default_device")   # "cpu:1" is refused
        return None
    return dev


def set_default_device(device):
    """Make `device` ("cpu", "cuda", "cuda:1", "check", a cr.device; None for the CPU) the
    device that creation functions (`cr.zeros`, `cr.tensor`, `cr.randn`, ...) and layers
    (`nn.Linear`, ...) use when given no `device=`, in this thread, as PyTorch 2's
    `torch.set_default_device`. `with cr.device("check"):` does it for one block.
    `*_like` functions still follow their tensor, and `from_numpy` stays on the host.

    >>> import chainrule as cr
    >>> from chainrule.backend import set_default_device, get_default_device
    >>> set_default_device("check")
    >>> str(cr.zeros(2).device), get_default_device()
    ('check:0', device(type='check'))
    >>> set_default_device(None)
    >>> str(cr.zeros(2).device)
    'cpu'
    """
    _set_default(_validated_default(device))


def get_default_device():
    """The device creation functions use when given no `device=` (a cr.device; the CPU unless
    changed with `set_default_device` or inside `with cr.device(...)`).

    NOTE: it is the device as it was named: `device(type='cuda')` after
    `set_default_device("cuda")`, where PyTorch answers with the current index (cuda:0).

    >>> import chainrule as cr
    >>> from chainrule.backend import get_default_device
    >>> get_default_device()
    device(type='cpu')
    >>> with cr.device("check"):
    ...     inside = get_default_device()
    >>> inside, get_default_device()
    (device(type='check'), device(type='cpu'))
    """
    dev = _default_device.get()
    return _CPU if dev is None else dev


def as_device(value, op):
    """None, a name ("cpu", "cuda:1"), an int (a CUDA index, as in PyTorch), a cr.device or a
    torch.device as a cr.device; None is the CPU. Only names it; does not load the library."""
    if value is None or value is _CPU:
        return _CPU
    if isinstance(value, device):
        return value
    if isinstance(value, str) or type(value).__name__ == "device":   # also torch.device(...)
        return device(str(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return device("cuda", int(value))
    from .errors import DTypeError
    raise DTypeError(f"{op}: device must be a name such as 'cpu' or 'cuda:0', an int or a "
                     f"cr.device, got {type(value).__name__} {value!r}"[:200])


def check_device(value, op):
    """`value` as a cr.device whose library is loaded and whose index exists: a DeviceError
    (with the install line or the devices there are) otherwise."""
    dev = as_device(value, op)
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            raise _device_error(str(dev), op)
        return dev
    k = kind(dev.type, op)
    if dev.index is not None and dev.index >= k.count():
        from .errors import DeviceError
        raise DeviceError(f"{op}: device {str(dev)!r} does not exist: there "
                          f"{'is' if k.count() == 1 else 'are'} {k.count()} {dev.type} "
                          f"device(s), numbered from 0.")
    return dev


def _device_error(spec, op):
    from .errors import DeviceError
    return DeviceError(
        f"{op}: device {spec!r} is not a device chainrule has: use 'cpu', 'cuda' or "
        "'cuda:N' (CUDA through CuPy: pip install 'chainrule[cuda]'), or 'check' (a CPU "
        "device that fails on host-only calls, for testing GPU readiness).")


def get_rng_state():
    """The random generator's state, for `set_rng_state` to go back to.

    >>> import chainrule as cr
    >>> state = cr.get_rng_state()
    >>> first = cr.rand(2).tolist()
    >>> cr.set_rng_state(state)
    >>> cr.rand(2).tolist() == first
    True
    """
    return _rng.bit_generator.state


def set_rng_state(state):
    """Restore a state from `get_rng_state`: the draws that followed it repeat.

    >>> import chainrule as cr
    >>> state = cr.get_rng_state()
    >>> first = cr.randint(0, 100, (3,)).tolist()
    >>> cr.set_rng_state(state)
    >>> cr.randint(0, 100, (3,)).tolist() == first
    True
    """
    _rng.bit_generator.state = state


def _blas_limits(n, op):
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        from .errors import ShapeError
        raise ShapeError(f"{op}: the number of threads must be a positive int, got {n!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        from .errors import ChainruleError
        raise ChainruleError(f"{op} needs threadpoolctl to reach NumPy's BLAS; install it with "
                             "`pip install threadpoolctl` (it comes with scikit-learn)") from exc
    return threadpool_limits(limits=n, user_api="blas")


def set_num_threads(n):
    """Limit the BLAS threads of NumPy's matrix products (PyTorch's `set_num_threads`).

    Small models on a busy laptop often train fastest with 1: extra BLAS threads wait for a
    core more than they compute. Uses threadpoolctl (installed with scikit-learn).

    (The example is not run by the doc tests: it would hold for the rest of their run.)

    >>> import chainrule as cr
    >>> cr.set_num_threads(1)  # doctest: +SKIP
    """
    _blas_limits(n, "set_num_threads")


def num_threads(n):
    """A context manager limiting BLAS threads inside its block only.

    >>> import chainrule as cr
    >>> with cr.num_threads(1):
    ...     y = cr.ones(64, 64) @ cr.ones(64, 64)
    """
    return _blas_limits(n, "num_threads")
