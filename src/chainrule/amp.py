"""Automatic mixed precision, PyTorch's `torch.amp`: `autocast` and `GradScaler`, so that a
PyTorch AMP training loop runs with only its import changed.

NOTE: chainrule does not lower precision inside `autocast`: every op computes in its tensors'
dtypes, as under PyTorch's `autocast(..., enabled=False)`. float16 matmuls in NumPy are slower
than float32 ones, and CuPy's float16 path is not wired to per-op casting rules here, so
lowering would cost speed and accuracy for nothing. `autocast` still checks its arguments as
PyTorch does, and `is_autocast_enabled()` answers False (no op is autocast), so code that
casts by hand when autocast is on leaves its tensors alone. `GradScaler` is PyTorch's full
algorithm: it scales the loss, unscales the gradients, skips the steps whose gradients hold
inf or nan, and grows or backs off the scale; with float32 gradients those steps are rare.

>>> import chainrule as cr
>>> w = cr.tensor([1.0, -2.0], requires_grad=True)
>>> opt = cr.optim.SGD([w], lr=0.1)
>>> scaler = cr.amp.GradScaler("cpu")
>>> with cr.autocast(device_type="cpu", dtype=cr.float16):
...     loss = (w * w).sum()
>>> scaler.scale(loss).backward()
>>> scaler.step(opt); scaler.update()
>>> w.tolist(), scaler.get_scale()
([0.800000011920929, -1.600000023841858], 65536.0)
"""
import functools
import math
import warnings
from collections import abc

from . import backend
from .errors import AmpError, CheckpointError, DeviceError, DTypeError
from .optim.optimizer import write_grad
from .tensor import Tensor

np = backend.np

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "custom_fwd", "custom_bwd"]


# ---------------------------------------------------------------- autocast

def _device_type(device_type, op):
    """`device_type` checked as PyTorch checks it: a str naming a device type."""
    if not isinstance(device_type, str):
        raise AmpError(f"{op}: expected device_type of type str, such as 'cuda' or 'cpu', got "
                       f"{type(device_type).__name__} {device_type!r}; pass x.device.type for "
                       "a tensor's device.")
    if device_type not in backend.DEVICE_TYPES:
        raise DeviceError(f"{op}: unsupported device_type {device_type!r}: use one of "
                          f"{', '.join(map(repr, backend.DEVICE_TYPES))} (a type, no index).")
    return device_type


def _dtype_name(dtype):
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    return str(name).lower().rsplit(".", 1)[-1]       # torch.float16 -> "float16"


def _fast_dtype(dtype, device_type):
    """(the dtype autocast would lower to, whether it may), as PyTorch validates it. bfloat16
    is accepted by name ("bfloat16": chainrule has no such dtype) since it is never used."""
    if dtype is None:    # PyTorch's defaults: float16 on GPUs, bfloat16 on the CPU
        return ("bfloat16" if device_type == "cpu" else backend.float16), True
    name = _dtype_name(dtype)
    if name in ("float16", "half"):
        return backend.float16, True
    if name in ("bfloat16", "bf16"):
        return "bfloat16", True
    try:
        other = np.dtype(name)
    except TypeError:
        raise DTypeError(f"autocast: dtype {dtype!r} is not a dtype; pass cr.float16 (or "
                         "torch.float16 / torch.bfloat16 as in PyTorch).") from None
    if device_type == "cuda":    # PyTorch takes any dtype for CUDA
        return other, True
    warnings.warn(f"autocast: {device_type} autocast supports only float16 and bfloat16, got "
                  f"{other}: autocast is disabled in this region, as in PyTorch.", stacklevel=3)
    return other, False


class autocast:
    """`torch.autocast` / `torch.amp.autocast`: a context manager, or a decorator, for the
    forward pass of a mixed-precision program. See the module's NOTE: chainrule computes in
    the tensors' own dtypes inside it, so results equal those without it. The arguments are
    checked as in PyTorch: `device_type` a str ("cuda", "cpu", "check"), `dtype` float16 or
    bfloat16 (either is accepted and neither is converted to).

    >>> import chainrule as cr
    >>> x = cr.ones(2, 3)
    >>> with cr.autocast(device_type="cuda", dtype=cr.float16):
    ...     y = x @ x.T
    >>> y.dtype
    dtype('float32')
    >>> @cr.autocast("cpu")
    ... def forward(x):
    ...     return (x * 2).sum()
    >>> forward(x).item()
    12.0
    """

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        self.device = _device_type(device_type, "autocast")
        self.fast_dtype, allowed = _fast_dtype(dtype, self.device)
        self._enabled = bool(enabled) and allowed
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        return False

    def __call__(self, func):
        if not callable(func):
            raise TypeError(f"autocast()(func) needs a callable, got {type(func).__name__}; "
                            "to autocast a block, write `with cr.autocast(device_type=...):`.")

        @functools.wraps(func)
        def autocast_wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return autocast_wrapper

    def __repr__(self):
        return (f"autocast(device_type={self.device!r}, dtype={self.fast_dtype}, "
                f"enabled={self._enabled})")


def is_autocast_enabled(device_type=None):
    """`torch.is_autocast_enabled`: whether ops are autocast now; always False in chainrule,
    which never lowers precision (see the module's NOTE), also inside `autocast`.

    >>> import chainrule as cr
    >>> with cr.autocast("cuda"):
    ...     cr.amp.is_autocast_enabled("cuda")
    False
    """
    if device_type is not None:
        _device_type(device_type, "is_autocast_enabled")
    return False


def custom_fwd(fwd=None, *, device_type, cast_inputs=None):
    """`torch.amp.custom_fwd`, for the `forward` of a custom autograd Function: with autocast
    never on here, PyTorch's decorator changes nothing, so `forward` is returned as it is.

    >>> import chainrule as cr
    >>> @cr.amp.custom_fwd(device_type="cuda", cast_inputs=cr.float32)
    ... def forward(ctx, x):
    ...     return x * 2
    >>> forward(None, cr.tensor(1.5)).item()
    3.0
    """
    _device_type(device_type, "custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    return fwd


def custom_bwd(bwd=None, *, device_type):
    """`torch.amp.custom_bwd`, for the `backward` of a custom autograd Function: `backward`
    runs in `forward`'s autocast state, which here is always off; returned as it is.

    >>> import chainrule as cr
    >>> @cr.amp.custom_bwd(device_type="cuda")
    ... def backward(ctx, grad):
    ...     return grad * 2
    >>> backward(None, cr.tensor(1.0)).item()
    2.0
    """
    _device_type(device_type, "custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    return bwd


# ---------------------------------------------------------------- GradScaler

_READY, _UNSCALED, _STEPPED = "ready", "unscaled", "stepped"   # an optimizer's stage


def _f32(value):
    """A Python float rounded to float32, where PyTorch keeps the scale (inf past its range)."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


class GradScaler:
    """`torch.amp.GradScaler`: scales the loss so that small gradients survive float16, and
    undoes it before the optimizer step. PyTorch's algorithm: `scale(loss)` multiplies by the
    scale; `step(opt)` unscales the gradients (unless `unscale_(opt)` did) and skips
    `opt.step()` when one of them holds inf or nan; `update()` halves the scale after such a
    step (`backoff_factor`) and doubles it (`growth_factor`) after `growth_interval`
    consecutive good steps. Gradients stay on their device: the inf/nan check is done there
    and read back once per step (one GPU wait, as in PyTorch). With `enabled=False` every
    method is a pass-through. As in PyTorch, `GradScaler("cuda")` where CUDA is not available
    warns and disables itself.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.SGD([w], lr=0.5)
    >>> scaler = cr.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1)
    >>> scaler.scale(w * float("inf")).sum().backward()       # an overflowing step...
    >>> scaler.step(opt) is None, w.tolist()                 # ...is skipped
    (True, [1.0])
    >>> scaler.update(); scaler.get_scale()                   # and the scale backs off
    2.0
    """

    _warn_depth = 3       # warnings point at the caller's line

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        self._device = backend.as_device(device, "GradScaler").type
        self._enabled = bool(enabled) and self._device_usable()
        if self._enabled:
            _check_factors(growth_factor, backoff_factor)
        self._init_scale = init_scale
        self._scale = None             # a float32 value, set by the first scale()
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._growth_tracker = None    # consecutive good steps, set with the scale
        self._states = {}              # id(optimizer) -> its stage and inf/nan checks

    def _device_usable(self):
        """False, with PyTorch's warning, for a CUDA scaler where CUDA is not available."""
        if self._device != "cuda":
            return True
        from . import cuda
        if cuda.is_available():
            return True
        warnings.warn("GradScaler('cuda') is enabled, but CUDA is not available: disabling it "
                      "(scale() returns its input, step() calls optimizer.step()), as PyTorch "
                      "does. Use GradScaler('cpu') to scale on the CPU.",
                      stacklevel=self._warn_depth)
        return False

    # ----- the training-step calls
    def scale(self, outputs):
        """`outputs` (a tensor, or lists/tuples of them) times the scale; unchanged when the
        scaler is disabled.

        >>> import chainrule as cr
        >>> scaler = cr.amp.GradScaler("cpu", init_scale=8.0)
        >>> scaler.scale(cr.tensor(0.5)).item(), scaler.scale([cr.tensor(1.0)])[0].item()
        (4.0, 8.0)
        """
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = _f32(self._init_scale)
            self._growth_tracker = self._init_growth_tracker
        return self._scaled(outputs)

    def _scaled(self, value):
        if isinstance(value, Tensor):
            return value * self._scale
        if isinstance(value, (list, tuple)):
            return type(value)(self._scaled(v) for v in value)
        if isinstance(value, abc.Iterable) and not isinstance(value, (str, bytes)):
            return map(self._scaled, value)         # any other iterable, lazily (PyTorch's)
        raise AmpError(f"GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, "
                       f"got {type(value).__name__}; scale the loss tensor, before .item().")

    def unscale_(self, optimizer):
        """Divide the gradients of `optimizer`'s parameters by the scale, in place, and note
        whether one holds inf or nan. Call it once per step, between `backward` and `step`,
        to work on true gradients (e.g. `clip_grad_norm_`); `step` then does not unscale again.

        >>> import chainrule as cr
        >>> w = cr.tensor([3.0], requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=0.1)
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> scaler.scale(w * w).sum().backward()
        >>> scaler.unscale_(opt); w.grad.tolist()
        [6.0]
        """
        if not self._enabled:
            return
        self._require_scale("unscale_")
        state = self._state(optimizer)
        if state["stage"] == _UNSCALED:
            raise AmpError("GradScaler.unscale_: unscale_() has already been called on this "
                           "optimizer since the last update(); call it once per step, then "
                           "scaler.step(optimizer) and scaler.update().")
        if state["stage"] == _STEPPED:
            raise AmpError("GradScaler.unscale_: unscale_() is being called after step(); call "
                           "it before scaler.step(optimizer), or after scaler.update().")
        inverse = _f32(1.0 / self._scale)       # the reciprocal in double, then float32
        state["found_inf"] = _unscale_grads(optimizer, inverse)
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale the gradients (unless `unscale_` did) and call `optimizer.step(*args,
        **kwargs)` if none holds inf or nan; returns what it returns, or None when skipped.

        >>> import chainrule as cr
        >>> w = cr.tensor([1.0], requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=0.5)
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> scaler.scale(w * 2).sum().backward()
        >>> scaler.step(opt); w.tolist()
        [0.0]
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise AmpError("GradScaler.step: closure use is not supported while the scaler is "
                           "enabled (as in PyTorch); compute the loss and backward() before "
                           "calling scaler.step(optimizer).")
        self._require_scale("step")
        state = self._state(optimizer)
        if state["stage"] == _STEPPED:
            raise AmpError("GradScaler.step: step() has already been called since the last "
                           "update(); call scaler.update() once per iteration, after the steps.")
        if state["stage"] == _READY:
            self.unscale_(optimizer)
        if not state["found_inf"]:
            raise AmpError("GradScaler.step: no inf checks were recorded for this optimizer: "
                           "none of its parameters has a gradient; call "
                           "scaler.scale(loss).backward() before scaler.step(optimizer).")
        result = None if _found_inf(state) else optimizer.step(*args, **kwargs)
        state["stage"] = _STEPPED
        return result

    def update(self, new_scale=None):
        """Back the scale off if a step of this iteration found inf or nan, else grow it after
        `growth_interval` good steps in a row; or set it to `new_scale` (a number, or a
        one-element tensor). Call it once per iteration, after every `step`.

        >>> import chainrule as cr
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> _ = scaler.scale(cr.tensor(1.0))
        >>> scaler.update(1024.0); scaler.get_scale()
        1024.0
        """
        if not self._enabled:
            return
        self._require_scale("update")
        if new_scale is not None:
            self._scale = _new_scale(new_scale)
        else:
            checked = [s for s in self._states.values() if s["found_inf"]]
            if not checked:
                raise AmpError("GradScaler.update: no inf checks were recorded prior to "
                               "update(); call scaler.step(optimizer) (or unscale_) first.")
            self._adjust(any(_found_inf(s) for s in checked))
        self._states = {}

    def _adjust(self, found_inf):
        """PyTorch's scale update, in float32 as its scale tensor."""
        if found_inf:
            self._scale = _f32(self._scale * self._backoff_factor)
            self._growth_tracker = 0
        elif self._growth_tracker + 1 == self._growth_interval:
            grown = _f32(self._scale * self._growth_factor)
            if math.isfinite(grown):     # at float32's top the scale stays where it is
                self._scale = grown
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1

    def _require_scale(self, op):
        if self._scale is None:
            raise AmpError(f"GradScaler.{op}: the scaler has no scale yet: call "
                           f"scaler.scale(loss) earlier in the iteration (and backward() on "
                           f"it), before scaler.{op}(...).")

    def _state(self, optimizer):
        return self._states.setdefault(
            id(optimizer), {"stage": _READY, "found_inf": [], "read": None})

    # ----- queries and settings
    def get_scale(self):
        """The current scale (a Python float); 1.0 when the scaler is disabled.

        >>> import chainrule as cr
        >>> cr.amp.GradScaler("cpu").get_scale(), cr.amp.GradScaler(enabled=False).get_scale()
        (65536.0, 1.0)
        """
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale

    def get_growth_factor(self):
        """The factor the scale grows by.

        >>> import chainrule as cr
        >>> cr.amp.GradScaler("cpu").get_growth_factor()
        2.0
        """
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        """Set the factor the scale grows by.

        >>> import chainrule as cr
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> scaler.set_growth_factor(4.0); scaler.get_growth_factor()
        4.0
        """
        self._growth_factor = new_factor

    def get_backoff_factor(self):
        """The factor the scale backs off by.

        >>> import chainrule as cr
        >>> cr.amp.GradScaler("cpu").get_backoff_factor()
        0.5
        """
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        """Set the factor the scale backs off by.

        >>> import chainrule as cr
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> scaler.set_backoff_factor(0.25); scaler.get_backoff_factor()
        0.25
        """
        self._backoff_factor = new_factor

    def get_growth_interval(self):
        """How many good steps in a row make the scale grow.

        >>> import chainrule as cr
        >>> cr.amp.GradScaler("cpu").get_growth_interval()
        2000
        """
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        """Set how many good steps in a row make the scale grow.

        >>> import chainrule as cr
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> scaler.set_growth_interval(100); scaler.get_growth_interval()
        100
        """
        self._growth_interval = new_interval

    def _get_growth_tracker(self):
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker

    def is_enabled(self):
        """Whether the scaler scales (False when made with enabled=False, or for CUDA where
        CUDA is not available).

        >>> import chainrule as cr
        >>> cr.amp.GradScaler("cpu").is_enabled()
        True
        """
        return self._enabled

    # ----- checkpoints
    def state_dict(self):
        """The scaler's state, PyTorch's keys; empty when disabled. Save it after `update()`.

        >>> import chainrule as cr
        >>> cr.amp.GradScaler("cpu").state_dict()["scale"]
        65536.0
        """
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict):
        """Take the state `state_dict()` gave (nothing happens when this scaler is disabled).

        >>> import chainrule as cr
        >>> scaler = cr.amp.GradScaler("cpu")
        >>> scaler.load_state_dict(cr.amp.GradScaler("cpu", init_scale=8.0).state_dict())
        >>> scaler.get_scale()
        8.0
        """
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise AmpError("GradScaler.load_state_dict: the state dict is empty, possibly "
                           "because it was saved from a disabled GradScaler; save one from an "
                           "enabled scaler, or skip loading it.")
        missing = [k for k in _STATE_KEYS if k not in state_dict]
        if missing:
            raise CheckpointError(f"GradScaler.load_state_dict: missing keys: "
                                  f"{', '.join(missing)}; pass what state_dict() returns.")
        self._init_scale = state_dict["scale"]
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._scale is not None:
            self._scale = _f32(self._init_scale)
            self._growth_tracker = int(self._init_growth_tracker)


_STATE_KEYS = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")


def _check_factors(growth_factor, backoff_factor):
    if not growth_factor > 1.0:
        raise AmpError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor!r}.")
    if not backoff_factor < 1.0:
        raise AmpError(f"GradScaler: backoff_factor must be < 1.0, got {backoff_factor!r}.")


def _new_scale(value):
    """update(new_scale=...): a number, or a one-element tensor that requires no grad."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.requires_grad:
        return _f32(value.item())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _f32(value)
    raise AmpError(f"GradScaler.update: new_scale must be a float or a one-element tensor "
                   f"with requires_grad=False, got {type(value).__name__} {value!r}"[:200])


def _unscale_grads(optimizer, inverse):
    """Multiply every gradient of `optimizer` by `inverse` in place; one 0-d bool array per
    device, True where some gradient held inf or nan (left there: no read back here)."""
    by_device = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.dtype == backend.float16:
                raise AmpError("GradScaler: attempting to unscale float16 gradients; keep the "
                               "parameters in float32 (mixed precision lowers the ops, not "
                               "the weights): drop model.half().")
            by_device.setdefault(backend.device_of(p.grad._data), []).append(p)
    return [_unscale_on_device(params, inverse) for params in by_device.values()]


def _unscale_on_device(params, inverse):
    xp = backend.xp_of(params[0].grad._data)
    found = None
    for p in params:
        data = p.grad._data
        bad = ~xp.isfinite(data).all()     # checked before unscaling, as PyTorch
        found = bad if found is None else found | bad
        write_grad(p, data * data.dtype.type(inverse))
    return found


def _found_inf(state):
    """Whether an optimizer's gradients held inf or nan: the one read back of a step."""
    if state["read"] is None:
        state["read"] = any(bool(found) for found in state["found_inf"])
    return state["read"]


# ---------------------------------------------------------------- torch.cuda.amp

class _CudaAutocast(autocast):
    """`cr.cuda.amp.autocast(enabled=True, dtype=float16, cache_enabled=True)`: PyTorch's
    older spelling of `autocast("cuda", ...)` (deprecated there, still common).

    >>> import chainrule as cr
    >>> with cr.cuda.amp.autocast(enabled=True):
    ...     (cr.ones(2) * 3).tolist()
    [3.0, 3.0]
    """

    def __init__(self, enabled=True, dtype=backend.float16, cache_enabled=True):
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class _CudaGradScaler(GradScaler):
    """`cr.cuda.amp.GradScaler(init_scale=2.**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)`: PyTorch's older spelling of `GradScaler("cuda",
    ...)`; disabled, with a warning, where CUDA is not available.

    >>> import chainrule as cr
    >>> cr.cuda.amp.GradScaler(enabled=False).is_enabled()
    False
    """

    _warn_depth = 4

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval,
                         enabled)


def _cuda_custom_fwd(fwd=None, *, cast_inputs=None):
    return custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def _cuda_custom_bwd(bwd):
    return custom_bwd(bwd, device_type="cuda")


# What `cr.cuda.amp` (chainrule/cuda.py) serves, by name.
CUDA_AMP = {"autocast": _CudaAutocast, "GradScaler": _CudaGradScaler,
            "custom_fwd": _cuda_custom_fwd, "custom_bwd": _cuda_custom_bwd}
