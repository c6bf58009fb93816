"""The "cuda" device: CuPy arrays on NVIDIA GPUs, from the optional extra
`pip install 'chainrule[cuda]'` (CuPy built for CUDA 12, `cupy-cuda12x`).

`backend.kind("cuda")` calls `load` on first use, so `import chainrule` never imports CuPy.
CuPy follows NumPy's API and dispatch protocols, so the compute core runs on it unchanged:
`xp` is the `cupy` module. Copies between host and GPU happen only in `to_device` and
`to_host` (CuPy refuses implicit ones, as the "check" device does).

    >>> from chainrule.devices import cuda
    >>> cuda.INSTALL
    "pip install 'chainrule[cuda]'"
"""
from .. import backend
from ..errors import DeviceError

INSTALL = "pip install 'chainrule[cuda]'"


def load(op="device"):
    """The cuda device's ArrayKind; a DeviceError when CuPy or a usable GPU is missing."""
    cupy = _import_cupy(op)
    _device_count(cupy, op)     # fails here, once, rather than on the first copy

    def to_device(a, index):
        with cupy.cuda.Device(index):     # None: the current device
            return cupy.asarray(a)

    def synchronize(index):
        cupy.cuda.Device(index).synchronize()

    return backend.ArrayKind(   # (the default root: CuPy views share .base as NumPy's do)
        "cuda", cupy, cupy.ndarray, to_device=to_device, to_host=cupy.asnumpy,
        index_of=lambda a: a.device.id, synchronize=synchronize, count=lambda: _device_count(cupy, "cuda"),
        special={"erf": _erf})


def _erf(a):
    from cupyx.scipy.special import erf    # SciPy's erf would not take a CuPy array
    return erf(a)


def _import_cupy(op):
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError(
            f"{op}: the 'cuda' device computes with CuPy, which is not installed ({exc}). "
            f"Install it with {INSTALL} (CuPy for CUDA 12: cupy-cuda12x), or stay on the "
            "CPU (device='cpu').") from exc
    except Exception as exc:    # a broken install: a library missing, a CUDA mismatch
        raise DeviceError(f"{op}: CuPy is installed but fails to import ({exc!r}); reinstall "
                          f"it with {INSTALL}, or stay on the CPU (device='cpu').") from exc
    return cupy


def _device_count(cupy, op):
    """How many GPUs CuPy sees; a DeviceError when none (no GPU, or no usable driver)."""
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:    # CUDARuntimeError: no driver, a driver too old, no device
        raise DeviceError(
            f"{op}: CuPy is installed but no CUDA device is usable ({exc}). Check that "
            "`nvidia-smi` lists a GPU and that its driver supports CUDA 12, or stay on the "
            "CPU (device='cpu'); cr.cuda.is_available() tells beforehand.") from exc
    if n == 0:
        raise DeviceError(f"{op}: CuPy is installed but finds no CUDA device; stay on the "
                          "CPU (device='cpu'); cr.cuda.is_available() tells beforehand.")
    return n
