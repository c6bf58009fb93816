"""Stateless neural-network functions (PyTorch's `torch.nn.functional`), composed from
chainrule's primitives, so every gradient is exact and `explain` can show each step.

`linear` and `cross_entropy` are single entry points on purpose: their bodies may later be
replaced by fused primitives without changing any caller.
"""
import math

import numpy as np

from .. import backend, ops
from ..ops import fused
from ..ops.conv import float_input  # lives in ops: conv2d and the pools check their input too
from ..errors import DTypeError, DomainError, IndexError_, ShapeError
from ..grad_mode import no_grad
from ..ops.registry import compute, decide, guard
from ..tensor import Tensor
from ..ops.losses import bce
from ..ops.special import erf

# ---------------------------------------------------------------- checks


def _like(value, ref):
    """`value` as a Tensor with `ref`'s dtype (and device) when it is a Python number or
    array."""
    if isinstance(value, Tensor):
        return value
    return Tensor._wrap(backend.beside(backend.to_array(value).astype(ref.dtype, copy=False),
                                       ref._data))


def _same_device(data, like, what, op, like_what="the input"):
    """A DeviceError naming both devices when the array `data` (e.g. class labels) is not on
    the device of `like` (the input); they reach the compute as params, not as inputs."""
    if type(data) is type(like) and (type(data) is np.ndarray
                                     or backend.device_of(data) == backend.device_of(like)):
        return
    from ..errors import DeviceError
    here, there = backend.device_of(like), backend.device_of(data)
    raise DeviceError(f"{op}: {like_what} is on {here} but the {what} on {there}; expected "
                      f"both on one device. Move the {what} with .to({str(here)!r}) (e.g. "
                      "y.to(x.device)), or the model with model.to(device).")


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(input, target, op):
    if input.shape != target.shape:
        raise ShapeError(
            f"{op}: input has shape {tuple(input.shape)} but target has shape "
            f"{tuple(target.shape)}; they must match (broadcasting them here is almost always "
            "a bug, e.g. (N, 1) against (N,)). Reshape one, e.g. target.reshape(input.shape).")


# ---------------------------------------------------------------- activations

def relu(x):
    """max(x, 0); the gradient at 0 is 0 (PyTorch).

    >>> import chainrule as cr
    >>> relu(cr.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    return ops.relu(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow.

    >>> import chainrule as cr
    >>> sigmoid(cr.tensor([0.0, -1e4])).tolist()
    [0.5, 0.0]
    """
    return ops.sigmoid(x)


def tanh(x):
    """tanh(x) elementwise; its derivative is 1 - tanh(x)².

    >>> import chainrule as cr
    >>> x = cr.tensor([0.0], requires_grad=True)
    >>> tanh(x).sum().backward()
    >>> x.grad.tolist()
    [1.0]
    """
    return ops.tanh(x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope·x (the slope's side is taken at 0, as PyTorch).

    >>> import chainrule as cr
    >>> leaky_relu(cr.tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    x = ops.as_tensor(x)
    return ops.where(x > 0, x, x * negative_slope)


def gelu(x, approximate="none"):
    """x·Φ(x), Φ the standard normal CDF: the exact erf form by default (PyTorch's default);
    approximate='tanh' gives 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).

    >>> import chainrule as cr
    >>> round(gelu(cr.tensor(1.0)).item(), 4)
    0.8413
    """
    x = float_input(x, "gelu")
    if approximate == "tanh":
        inner = (x + 0.044715 * x * x * x) * math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + inner.tanh())
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


SOFTPLUS_THRESHOLD = 20.0    # PyTorch's: above it softplus(x) is x


def softplus(x):
    """log(1 + exp(x)), stable for any x: the shift m = max(x, 0) is a constant, so the
    gradient is exactly sigmoid(x) (no kink at 0). As in PyTorch, above x = 20 the value is x
    and the gradient 1, so softplus(inf) = inf with gradient 1 (not inf - inf = nan).

    >>> import chainrule as cr
    >>> x = cr.tensor([0.0, 1e4, float("inf")], requires_grad=True)
    >>> y = softplus(x)
    >>> y.sum().backward()
    >>> [round(v, 4) for v in y.tolist()], x.grad.tolist()
    ([0.6931, 10000.0, inf], [0.5, 1.0, 1.0])
    """
    x = ops.as_tensor(x)
    big = x > SOFTPLUS_THRESHOLD
    z = ops.where(big, 0.0, x)          # the formula's operand, finite where x is large
    m = compute(_positive_part, (z,))
    return ops.where(big, x, ((-m).exp() + (z - m).exp()).log() + m)


def _positive_part(x):
    return np.maximum(x, 0)


def silu(x):
    """x·sigmoid(x) (also called swish).

    >>> import chainrule as cr
    >>> silu(cr.tensor([0.0, 1e4])).tolist()
    [0.0, 10000.0]
    """
    x = ops.as_tensor(x)
    return x * ops.sigmoid(x)


def _softmax_axis(dim, axis, dtype, x, op):
    """The one axis of a softmax (dim= or NumPy's axis=), and x in `dtype` if given."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: give dim= or axis=, not both")
        dim = axis
    if dtype is not None:
        x = ops.cast(x, backend.as_dtype(dtype, op))
    return (-1 if dim is None else dim), float_input(x, op)


def softmax(x, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """exp(x) / Σ exp(x) along `dim` (or `axis`; the last one by default), stable for large
    logits; `dtype` converts x first, as in PyTorch.

    >>> import chainrule as cr
    >>> softmax(cr.tensor([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    dim, x = _softmax_axis(dim, axis, dtype, x, "softmax")
    return ops.softmax(x, dim)


def log_softmax(x, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """x - logsumexp(x) along `dim` (or `axis`; the last one by default), stable.

    >>> import chainrule as cr
    >>> log_softmax(cr.tensor([1e4, 0.0])).tolist()
    [0.0, -10000.0]
    >>> log_softmax(cr.tensor([[0.0, 0.0]]), axis=1).tolist()
    [[-0.6931471824645996, -0.6931471824645996]]
    """
    dim, x = _softmax_axis(dim, axis, dtype, x, "log_softmax")
    return ops.log_softmax(x, dim)


def one_hot(tensor, num_classes=-1):
    """Class indices (an integer tensor) as one-hot rows: int64 of shape tensor.shape +
    (num_classes,); num_classes=-1 takes the largest index + 1, as in PyTorch.

    >>> import chainrule as cr
    >>> one_hot(cr.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    t = ops.as_tensor(tensor)
    if t.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: expects an integer tensor of class indices, got {t.dtype}; "
                         "convert it with .long()")
    labels = t._data
    if labels.size and labels.min() < 0:
        raise IndexError_(f"one_hot: class values must be non-negative, got {int(labels.min())}")
    if num_classes == -1:
        if not labels.size:
            raise ShapeError("one_hot: cannot infer num_classes from an empty tensor; pass it")
        num_classes = int(labels.max()) + 1
    elif labels.size and labels.max() >= num_classes:
        raise IndexError_(f"one_hot: class value {int(labels.max())} is not below "
                          f"num_classes={num_classes}")
    return compute(_one_hot, (t,), n=int(num_classes))


def _one_hot(labels, n):
    return (labels[..., None] == backend.xp_of(labels).arange(n)).astype(np.int64)


# ---------------------------------------------------------------- layers

def linear(x, weight, bias=None):
    """x @ weightᵀ + bias, with weight of shape (out_features, in_features) (PyTorch's layout).

    >>> import chainrule as cr
    >>> linear(cr.ones(2, 3), cr.ones(4, 3), cr.zeros(4)).shape
    (2, 4)
    """
    if weight.ndim == 2 and (bias is None or bias.ndim == 1):
        return fused.linear(x, weight, bias)   # one primitive: measured faster (bench/NOTES.md)
    out = ops.matmul(x, weight.mT if weight.ndim > 1 else weight)
    return out if bias is None else out + bias


def dropout(x, p=0.5, training=True):
    """Zero each entry with probability p and scale the rest by 1/(1-p) (inverted dropout),
    drawing from chainrule's generator; the identity when not training.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> dropout(cr.ones(6), p=0.5).tolist()
    [2.0, 0.0, 0.0, 0.0, 2.0, 2.0]
    >>> dropout(cr.ones(3), training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must lie in [0, 1], got {p}")
    x = ops.as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # the mask is a recorded computation, so a compiled step draws a fresh one on every call
    return x * compute(_dropout_mask, (x,), p=p)


def _dropout_mask(x, p):
    """0 with probability p, else 1/(1 - p), shaped like x, drawn from chainrule's generator."""
    keep = backend.rng().random(x.shape) >= p   # NOTE: drawn on the host on every device,
    return backend.beside((keep / (1.0 - p)).astype(x.dtype), x)   # so a seed gives the same masks


def embedding(indices, weight, padding_idx=None):
    """Rows of `weight` picked by integer `indices` (any shape); the result has shape
    indices.shape + (embedding_dim,). The row at padding_idx gets no gradient.

    >>> import chainrule as cr
    >>> table = cr.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], requires_grad=True)
    >>> out = embedding(cr.tensor([[2, 1, 2]]), table)
    >>> out.sum().backward()
    >>> out.shape, table.grad.tolist()
    ((1, 3, 2), [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    """
    if isinstance(indices, Tensor):
        idx = indices._data
        if type(idx) is not type(weight._data):
            _same_device(idx, weight._data, "indices", "embedding", "the table (weight)")
    else:
        idx = backend.beside(backend.to_array(indices), weight._data)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be integers, got dtype {idx.dtype}; convert "
                         "them with idx.astype(cr.int64)")
    n = weight.shape[0]
    bad = decide(_out_of_range, idx, n) if idx.size else None
    if bad is not None:
        raise IndexError_(f"embedding: index {bad} is out of range for a table of {n} "
                          f"rows (indices must lie in [0, {n})); check the vocabulary size.")
    out = guard(weight[idx], indices=indices)
    if padding_idx is not None:
        row = padding_idx % n
        pad = compute(_is_row, (indices if isinstance(indices, Tensor) else Tensor._wrap(idx),),
                      row=row)
        out = ops.where(pad, weight.detach()[row], out)
    return out


def _out_of_range(idx, n):
    """The first index outside [-n, n), or None."""
    if bool((idx.min() >= -n) & (idx.max() < n)):   # one read back from a device, not two
        return None
    return int(idx[(idx < -n) | (idx >= n)].ravel()[0])


def _is_row(idx, row):
    return (idx == row)[..., None]


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalize over every axis except the channels (axis 1): batch statistics in training
    (updating running_mean/var in place, the variance unbiased as in PyTorch), the running
    statistics otherwise. momentum=None keeps a cumulative average (pass momentum as 1/n).

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0], [3.0]])
    >>> rm, rv = cr.zeros(1), cr.ones(1)
    >>> [round(v, 4) for v in batch_norm(x, rm, rv, training=True).reshape(-1).tolist()]
    [-1.0, 1.0]
    >>> [round(v, 4) for v in rm.tolist() + rv.tolist()]
    [0.2, 1.1]
    """
    x = float_input(x, "batch_norm")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        n = x._data.size // x.shape[1]
        if n <= 1:
            raise ShapeError(f"batch_norm: training needs more than one value per channel, got "
                             f"input of shape {tuple(x.shape)}; use a batch larger than 1 or "
                             "call model.eval().")
        mean = x.mean(axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axes, keepdims=True)
        if running_mean is not None:
            # Tensor operations (not .data arithmetic), so a compiled step updates them too
            with no_grad():
                _update_stat(running_mean, mean, momentum)
                _update_stat(running_var, var * (n / (n - 1)), momentum)
    else:
        mean, var = _stat(running_mean, shape, x.dtype), _stat(running_var, shape, x.dtype)
        centered = x - mean
    out = centered / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _update_stat(stat, batch, m):
    """stat <- (1 - m)·stat + m·batch, in place (a running mean or variance)."""
    stat.copy_((1 - m) * stat + m * batch.detach().reshape(-1))


def _stat(stat, shape, dtype):
    """A running statistic reshaped to broadcast over x, in x's dtype, outside the graph."""
    s = stat.detach().reshape(shape)
    return s if s.dtype == dtype else s.astype(dtype)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last len(normalized_shape) axes (biased variance, as PyTorch).

    >>> import chainrule as cr
    >>> [round(v, 4) for v in layer_norm(cr.tensor([[1.0, 3.0]]), 2).reshape(-1).tolist()]
    [-1.0, 1.0]
    """
    x = float_input(x, "layer_norm")
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
        normalized_shape)
    k = len(normalized_shape)
    if tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise ShapeError(f"layer_norm: input of shape {tuple(x.shape)} does not end in the "
                         f"normalized shape {normalized_shape}; build LayerNorm with the last "
                         "dimension(s) of the input.")
    axes = tuple(range(x.ndim - k, x.ndim))
    centered = x - x.mean(axes, keepdims=True)
    var = (centered * centered).mean(axes, keepdims=True)
    out = centered / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


# ---------------------------------------------------------------- losses

def mse_loss(input, target, reduction="mean", half=False):
    """Mean squared error (t - o)²; half=True gives the seeds' ½(t - o)², whose derivative
    is simply (o - t).

    >>> import chainrule as cr
    >>> mse_loss(cr.tensor([1.0, 2.0]), cr.tensor([0.0, 0.0])).item()
    2.5
    >>> mse_loss(cr.tensor([1.0]), cr.tensor([0.0]), half=True).item()
    0.5
    """
    input = float_input(input, "mse_loss")
    target = _like(target, input)
    _same_shape(input, target, "mse_loss")
    d = input - target
    loss = d * d
    if half:
        loss = loss * 0.5
    return _reduce(loss, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error |t - o| (the gradient at a tie is 0, as PyTorch).

    >>> import chainrule as cr
    >>> l1_loss(cr.tensor([1.0, 4.0]), cr.tensor([2.0, 2.0]), reduction="sum").item()
    3.0
    """
    input = float_input(input, "l1_loss")
    target = _like(target, input)
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def _check_unit_interval(t, what, op):
    bad = decide(_outside_unit, t._data)
    if bad is not None:
        raise DomainError(f"{op}: {what} must lie in [0, 1], found {bad!r}; "
                          + ("apply sigmoid to the model's output, or use "
                             "binary_cross_entropy_with_logits on raw scores."
                             if what == "input" else
                             "binary targets are 0/1 labels or probabilities (for class "
                             "labels 0..C-1 use cross_entropy)."))


def _outside_unit(data):
    """The first value outside [0, 1], or None."""
    inside = (data >= 0) & (data <= 1)
    if not data.size or inside.all():
        return None
    return float(data[~inside].ravel()[0])


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t·ln p + (1 - t)·ln(1 - p)) for probabilities p (e.g. after sigmoid); each log is
    clamped at -100 as in PyTorch, so p = 0 or 1 give finite values and gradients.

    >>> import chainrule as cr
    >>> round(binary_cross_entropy(cr.tensor([0.5]), cr.tensor([1.0])).item(), 4)
    0.6931
    """
    input = float_input(input, "binary_cross_entropy")
    target = _like(target, input)
    _same_shape(input, target, "binary_cross_entropy")
    _check_unit_interval(input, "input", "binary_cross_entropy")
    _check_unit_interval(target, "target", "binary_cross_entropy")
    loss = bce(input, target)
    if weight is not None:
        loss = loss * _like(weight, input)
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross-entropy on raw scores x: (1 - t)·x + (1 + (pos_weight - 1)·t)·softplus(-x),
    exact and finite for any x (even ±1e4); the gradient is sigmoid(x) - t (for pos_weight 1).

    >>> import chainrule as cr
    >>> binary_cross_entropy_with_logits(cr.tensor([1e4]), cr.tensor([1.0])).item()
    0.0
    """
    input = float_input(input, "binary_cross_entropy_with_logits")
    target = _like(target, input)
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    _check_unit_interval(target, "target", "binary_cross_entropy_with_logits")
    sp = softplus(-input)
    if pos_weight is not None:
        sp = sp * (1.0 + (_like(pos_weight, input) - 1.0) * target)
    loss = (1.0 - target) * input + sp
    if weight is not None:
        loss = loss * _like(weight, input)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def _class_layout(input, target, op):
    """Flatten (N, C, d1, ...) scores to (M, C) and integer labels to (M,)."""
    t = _target_array(target, input, "target", op)
    if t.dtype.kind not in "iu":
        raise DTypeError(
            f"{op}: class-label targets must be integers, got dtype {t.dtype} with shape "
            f"{tuple(t.shape)} for input of shape {tuple(input.shape)}; convert labels with "
            "target.astype(cr.int64), or pass probabilities of the input's shape.")
    if input.ndim == 1:
        expected = ()
    else:
        expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(t.shape) != expected:
        raise ShapeError(f"{op}: input of shape {tuple(input.shape)} (classes on axis 1) needs "
                         f"class labels of shape {expected}, got {tuple(t.shape)}.")
    c = input.shape[-1] if input.ndim == 1 else input.shape[1]
    if input.ndim == 1:
        flat = input.reshape(1, c)
    elif input.ndim == 2:
        flat = input
    else:
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        flat = input.permute(perm).reshape(-1, c)
    return flat, t.reshape(-1), c


def _target_array(target, input, what, op):
    """The array of `target`: a Tensor's must be on input's device, other data is put there."""
    if isinstance(target, Tensor):
        t = target._data
        if type(t) is not type(input._data) or type(t) is not np.ndarray:
            _same_device(t, input._data, what, op)
        return t
    return backend.beside(backend.to_array(target), input._data)


def _labels_all_valid(t, c, ignore_index):
    """True when every label lies in [0, c) and none is ignore_index: with the default
    ignore_index (outside [0, c)) two reductions, not _check_labels' masks (measured 5.5 -> 2
    µs per loss, bench/NOTES.md); bad labels then raise on the general path."""
    if t.size and not 0 <= ignore_index < c:
        if type(t) is not np.ndarray:   # a device array: one read back to the host
            return bool((t.min() >= 0) & (t.max() < c))
        return bool(np.minimum.reduce(t, axis=None) >= 0 and np.maximum.reduce(t, axis=None) < c)
    return _bad_label(t, c, ignore_index) is None and bool((t != ignore_index).all())


def _bad_label(t, c, ignore_index):
    """The first label outside [0, c) that is not ignore_index, or None."""
    bad = (t != ignore_index) & ((t < 0) | (t >= c))
    return int(t[bad][0]) if bad.any() else None


def _check_labels(t, c, ignore_index, op):
    bad = decide(_bad_label, t, c, ignore_index)
    if bad is not None:
        raise IndexError_(f"{op}: class label {bad} is out of range for {c} classes "
                          f"(labels must lie in [0, {c}); ignore_index={ignore_index}). Check "
                          "that the last layer has as many outputs as there are classes.")


def _label_weights(t, ignore_index, dtype, weight=None):
    """Each label's weight: 0 where ignored, else 1 (or weight[label])."""
    valid = t != ignore_index
    w = valid.astype(dtype)
    if weight is not None:
        w = w * weight[np.where(valid, t, 0)]
    return w


def _safe_labels(t, ignore_index):
    """The labels with ignored ones replaced by 0 (a valid index; their weight is 0)."""
    return np.where(t != ignore_index, t, 0)


def _picked_nll(logp, t, c, weight, ignore_index, op):
    """Per-sample -w[t]·logp[t] and the per-sample weights w[t] (0 where ignored), both
    tensors outside the graph (computed with `compute`, so a compiled step recomputes them)."""
    _check_labels(t, c, ignore_index, op)
    labels = Tensor._wrap(t)
    safe = compute(_safe_labels, (labels,), ignore_index=ignore_index)
    w = compute(_label_weights, (labels,), ignore_index=ignore_index, dtype=logp.dtype,
                weight=None if weight is None else _weight_array(weight, c, logp, op))
    picked = logp[backend.xp_of(t).arange(t.shape[0]), safe]
    return -picked * w, w


def _weight_array(weight, c, like, op):
    w = weight._data if isinstance(weight, Tensor) else backend.to_array(weight)
    if w.shape != (c,):
        raise ShapeError(f"{op}: weight must have one entry per class, shape ({c},), got "
                         f"{tuple(w.shape)}")
    return backend.beside(w.astype(like.dtype, copy=False), like._data)


def _finish_labels(per, w, reduction, shape, op):
    if reduction == "none":
        return per.reshape(shape)
    if reduction == "sum":
        return per.sum()
    if reduction == "mean":
        if per.numel() == 0:     # NOTE: an empty batch's mean is nan (PyTorch), quietly
            return per.sum() * float("nan")
        return per.sum() / w.sum()
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of integer class labels given log-probabilities
    (N, C) or (N, C, d1, ...); 'mean' divides by the summed weights of the counted labels.

    >>> import chainrule as cr
    >>> nll_loss(cr.tensor([[-1.0, -2.0]]), cr.tensor([1])).item()
    2.0
    """
    input = float_input(input, "nll_loss")
    flat, t, c = _class_layout(input, target, "nll_loss")
    per, w = _picked_nll(flat, t, c, weight, ignore_index, "nll_loss")
    shape = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    return _finish_labels(per, w, reduction, shape, "nll_loss")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of raw scores `input` (N, C) (or (C,), or (N, C, d1, ...)).

    `target` is either integer class labels (N,), or probabilities / one-hot rows of the
    input's shape: then it is the seeds' multi-class formula -1/m Σᵢ Σⱼ Yⱼ ln ŷⱼ with
    ŷ = softmax(input). Stable for logits of ±1e4 (log_softmax with a constant shift).

    >>> import chainrule as cr
    >>> x = cr.tensor([[2.0, 0.0, 0.0]])
    >>> a = cross_entropy(x, cr.tensor([0])).item()
    >>> b = cross_entropy(x, cr.tensor([[1.0, 0.0, 0.0]])).item()
    >>> round(a, 4) == round(b, 4) == 0.2395
    True
    """
    input = float_input(input, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got "
                         f"{label_smoothing}")
    axis = 0 if input.ndim == 1 else 1
    tdata = _target_array(target, input, "target", "cross_entropy")
    plain = weight is None and label_smoothing == 0 and reduction in ("mean", "sum", "none")
    if tdata.dtype.kind == "f" and tuple(tdata.shape) == tuple(input.shape):
        if plain:   # one fused primitive: measured faster (bench/NOTES.md)
            return fused.softmax_cross_entropy_probs(input, _like(target, input), axis, reduction)
        return _cross_entropy_probs(input, target, axis, weight, reduction, label_smoothing)
    if plain and input.ndim == 2:
        _, t, c = _class_layout(input, target, "cross_entropy")
        if decide(_labels_all_valid, t, c, ignore_index):   # re-checked by a compiled step
            return guard(fused.softmax_cross_entropy(input, t, reduction), target=target)
    logp = ops.log_softmax(input, axis)
    flat, t, c = _class_layout(logp, target, "cross_entropy")
    per, w = _picked_nll(flat, t, c, weight, ignore_index, "cross_entropy")
    if label_smoothing > 0:
        wc = None if weight is None else Tensor._wrap(_weight_array(weight, c, flat,
                                                                     "cross_entropy"))
        smooth = -(flat if wc is None else flat * wc).sum(1)
        valid = compute(_label_weights, (Tensor._wrap(t),), ignore_index=ignore_index,
                        dtype=flat.dtype)
        per = (1.0 - label_smoothing) * per + (label_smoothing / c) * smooth * valid
    shape = () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
    return _finish_labels(per, w, reduction, shape, "cross_entropy")


def _cross_entropy_probs(input, target, axis, weight, reduction, label_smoothing):
    target = _like(target, input)
    c = input.shape[axis]
    if label_smoothing > 0:
        target = target * (1.0 - label_smoothing) + label_smoothing / c
    logp = ops.log_softmax(input, axis)
    prod = logp * target
    if weight is not None:
        wshape = (c,) + (1,) * (input.ndim - axis - 1)
        prod = prod * Tensor._wrap(_weight_array(weight, c, input, "cross_entropy")
                                   .reshape(wshape))
    loss = -prod.sum(axis)
    if reduction == "mean" and loss.numel() == 0:
        return loss.sum() * float("nan")    # NOTE: an empty batch's mean is nan (PyTorch)
    return _reduce(loss, reduction, "cross_entropy")


# conv/pool functions live beside their primitives (ops/conv.py); re-exported here as F.conv2d etc.
from ..ops.conv import avg_pool2d, conv2d, max_pool2d  # noqa: E402,F401
