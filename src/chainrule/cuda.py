"""`torch.cuda` for chainrule: NVIDIA GPUs through CuPy (`pip install 'chainrule[cuda]'`).

Nothing here imports CuPy until a function is called, so `import chainrule` stays light and
works where CuPy is absent; there `is_available()` is False and `device_count()` 0, so the
usual `device = "cuda" if torch.cuda.is_available() else "cpu"` picks the CPU.

>>> import chainrule as cr
>>> device = "cuda" if cr.cuda.is_available() else "cpu"
>>> cr.cuda.device_count() >= (device == "cuda")
True
"""
import importlib
import sys
import types

from . import backend
from .errors import DeviceError


class _LazyAmp(types.ModuleType):
    """`cr.cuda.amp`, PyTorch's older `torch.cuda.amp` spelling: `autocast`, `GradScaler`,
    `custom_fwd` and `custom_bwd` with "cuda" built in (chainrule.amp), loaded on first use so
    that this module stays light. Registered as the module `chainrule.cuda.amp`, so
    `from chainrule.cuda.amp import GradScaler, autocast` works as well.

    >>> import chainrule as cr
    >>> from chainrule.cuda.amp import autocast
    >>> autocast is cr.cuda.amp.autocast
    True
    """

    __all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]

    def __getattr__(self, name):
        if name not in self.__all__:     # dunders the import system asks for load nothing
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = importlib.import_module("chainrule.amp").CUDA_AMP[name]
        setattr(self, name, value)
        return value

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.__all__))


amp = _LazyAmp(__name__ + ".amp", "torch.cuda.amp for chainrule: autocast, GradScaler "
               "(chainrule.amp) with 'cuda' built in.")
sys.modules[amp.__name__] = amp


def _kind(op):
    """The cuda ArrayKind (CuPy loaded), or the DeviceError saying what is missing."""
    return backend.kind("cuda", op)


def is_available():
    """True when CuPy imports and sees at least one CUDA device; never raises.

    >>> import chainrule as cr
    >>> cr.cuda.is_available() in (True, False)
    True
    """
    return device_count() > 0


def device_count():
    """How many CUDA devices there are (0 without CuPy or a usable GPU).

    >>> import chainrule as cr
    >>> cr.cuda.device_count() >= 0
    True
    """
    try:
        return _kind("cuda.device_count").count()
    except DeviceError:
        return 0


def current_device():
    """The index of the device that `"cuda"` (no index) means now; a DeviceError without one.

    >>> import chainrule as cr
    >>> if cr.cuda.is_available():
    ...     assert cr.cuda.current_device() < cr.cuda.device_count()
    """
    return _kind("cuda.current_device").xp.cuda.runtime.getDevice()


def set_device(device):
    """Make `device` (an index, "cuda:1" or a cr.device) the one `"cuda"` means; None or
    "cuda" without an index changes nothing, as in PyTorch.

    >>> import chainrule as cr
    >>> if cr.cuda.is_available():
    ...     cr.cuda.set_device(0)
    """
    index = _index(device, "cuda.set_device")
    if index is not None:
        _kind("cuda.set_device").xp.cuda.runtime.setDevice(index)


def synchronize(device=None):
    """Wait until every queued operation on `device` (default: the current one) has finished.
    GPU calls return before the GPU is done: synchronize before reading a timer.

    >>> import chainrule as cr
    >>> if cr.cuda.is_available():
    ...     cr.cuda.synchronize()
    """
    _kind("cuda.synchronize").synchronize(_index(device, "cuda.synchronize"))


def manual_seed(seed):
    """Seed the random numbers drawn for CUDA tensors: the same generator `cr.manual_seed`
    seeds, because chainrule draws every random number (randn, dropout masks, init) on the
    host with its NumPy generator and copies it to the device. A seed therefore gives the
    same numbers on the CPU and on a GPU.

    NOTE: in PyTorch, `torch.cuda.manual_seed` seeds only the current GPU's generator and
    leaves the CPU's alone; here it reseeds the one shared generator, with or without a GPU
    (so a program behaves the same on both). Programs seed once at the start
    (`torch.manual_seed(s)`, then `torch.cuda.manual_seed(s)` / `manual_seed_all(s)` with the
    same `s`), which gives the same stream either way; only a program that reseeds the GPU
    alone mid-run, or with a different seed, sees a difference.

    >>> import chainrule as cr
    >>> cr.cuda.manual_seed(7)
    >>> a = cr.randn(2).tolist()
    >>> cr.manual_seed(7)
    >>> cr.randn(2).tolist() == a
    True
    """
    backend.manual_seed(seed)


def manual_seed_all(seed):
    """Seed the random numbers of every device: the same as `manual_seed` (one host generator
    feeds all devices).

    >>> import chainrule as cr
    >>> cr.cuda.manual_seed_all(0)
    """
    backend.manual_seed(seed)


def get_device_name(device=None):
    """The GPU's name, e.g. 'NVIDIA H200'; a DeviceError without one.

    >>> import chainrule as cr
    >>> if cr.cuda.is_available():
    ...     assert cr.cuda.get_device_name(0)
    """
    xp = _kind("cuda.get_device_name").xp
    index = _index(device, "cuda.get_device_name")
    name = xp.cuda.runtime.getDeviceProperties(
        xp.cuda.runtime.getDevice() if index is None else index)["name"]
    return name.decode() if isinstance(name, bytes) else name


def memory_allocated(device=None):
    """Bytes of GPU memory that tensors on `device` hold now (CuPy's memory pool: freed tensors'
    memory is kept for reuse and not counted); 0 without CUDA.

    >>> import chainrule as cr
    >>> cr.cuda.memory_allocated() >= 0
    True
    """
    if not is_available():
        return 0
    xp = _kind("cuda.memory_allocated").xp
    with xp.cuda.Device(_index(device, "cuda.memory_allocated")):
        return xp.get_default_memory_pool().used_bytes()


def empty_cache():
    """Give the GPU memory that CuPy keeps for reuse back to the driver (nothing without CUDA).

    >>> import chainrule as cr
    >>> cr.cuda.empty_cache()
    """
    if is_available():
        _kind("cuda.empty_cache").xp.get_default_memory_pool().free_all_blocks()


def _index(device, op):
    """A CUDA device index (None: the current device) from an int, "cuda:N" or a cr.device."""
    if device is None:
        return None
    dev = backend.as_device(device, op)
    if dev.type != "cuda":
        raise DeviceError(f"{op}: {str(dev)!r} is not a CUDA device; pass an index, "
                          "'cuda:N' or cr.device('cuda', N).")
    return dev.index
