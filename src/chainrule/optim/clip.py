"""Gradient clipping, by global norm and by value (PyTorch's `clip_grad_norm_` and
`clip_grad_value_`, which chainrule users also find as `chainrule.nn.utils.*`)."""
import math

from .. import backend
from ..errors import GraphError
from ..tensor import Tensor
from .optimizer import write_grad

np = backend.np


def _with_grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so their joint `norm_type`-norm is at most `max_norm`;
    returns the norm before clipping (a 0-d tensor). Gradients are scaled by
    min(1, max_norm / (norm + 1e-6)), as in PyTorch.

    >>> import chainrule as cr
    >>> w = cr.tensor([0.0, 0.0], requires_grad=True)
    >>> w.grad = cr.tensor([3.0, 4.0])
    >>> cr.optim.clip_grad_norm_([w], max_norm=1.0).item()
    5.0
    >>> [round(v, 3) for v in w.grad.tolist()]
    [0.6, 0.8]
    """
    params = _with_grads(parameters)
    grads = [p.grad for p in params]
    if not grads:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    norm_type = float(norm_type)
    if type(grads[0]._data) is not np.ndarray:
        return _clip_on_device(params, grads, float(max_norm), norm_type, error_if_nonfinite)
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g._data))) if g._data.size else 0.0 for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g._data.astype(np.float64)) ** norm_type))
                    for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        _nonfinite(total, norm_type)
    coef = min(1.0, float(max_norm) / (total + 1e-6))
    for p in params:  # in place, as PyTorch's g.mul_(coef)
        write_grad(p, p.grad._data * p.grad.dtype.type(coef))
    return Tensor._wrap(np.asarray(total, dtype=grads[0].dtype))


def _clip_on_device(params, grads, max_norm, norm_type, error_if_nonfinite):
    """clip_grad_norm_ for gradients on a device: the norm stays there (a 0-d array; no copy
    to the host unless error_if_nonfinite must look at it), computed in the CPU path's order
    and precision, so both give the same numbers."""
    devices = backend.mixed_devices([g._data for g in grads])
    if len(devices) > 1:
        raise backend.mixed_device_error("clip_grad_norm_", devices)
    xp = backend.xp_of(grads[0]._data)
    if math.isinf(norm_type):
        parts = [xp.max(xp.abs(g._data)) for g in grads if g._data.size]
        total = xp.max(xp.stack(parts)).astype(np.float64) if parts else \
            xp.zeros((), np.float64)
    else:
        total = None
        for g in grads:   # summed one by one, as the CPU path's Python sum
            part = xp.sum(xp.abs(g._data.astype(np.float64)) ** norm_type)
            total = part if total is None else total + part
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        _nonfinite(float(total), norm_type)
    ratio = max_norm / (total + 1e-6)
    coef = xp.where(ratio < 1.0, ratio, 1.0)    # the CPU path's min(1.0, ratio), nan included
    for p in params:
        write_grad(p, p.grad._data * coef.astype(p.grad.dtype))
    return Tensor._wrap(total.astype(grads[0].dtype))


def _nonfinite(total, norm_type):
    raise GraphError(
        f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total}; some "
        "gradient is NaN or inf. Find it with `with cr.detect_anomaly():`, or pass "
        "error_if_nonfinite=False to clip anyway.")


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place.

    >>> import chainrule as cr
    >>> w = cr.tensor([0.0, 0.0], requires_grad=True)
    >>> w.grad = cr.tensor([-3.0, 0.5])
    >>> cr.optim.clip_grad_value_([w], 1.0); w.grad.tolist()
    [-1.0, 0.5]
    """
    v = float(clip_value)
    for p in _with_grads(parameters):
        write_grad(p, np.clip(p.grad._data, -v, v))
