"""Normalisation layers: BatchNorm1d/2d (running statistics, eval mode) and LayerNorm."""
import numpy as np

from .. import backend, ops
from ..errors import ShapeError
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import check_features, empty_parameter, place
from .module import Module


class _BatchNorm(Module):
    _dims = ()   # the input ranks this layer accepts

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None, device=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = empty_parameter((num_features,), dtype)
            self.bias = empty_parameter((num_features,), dtype)
            init.ones_(self.weight)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype, "layer")
        if track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(num_features, dtype)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.array(0, np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        place(self, device)

    def forward(self, x):
        x = ops.as_tensor(x)
        if x.ndim not in self._dims:
            raise ShapeError(f"{self.layer_path()} needs input with {' or '.join(map(str, self._dims))}"
                             f" dimensions (batch, channels, ...), got shape {tuple(x.shape)}")
        check_features(self, x, self.num_features, 1, "channels")
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)   # a Tensor update: compiled steps replay it
            if momentum is None:   # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked._data)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch,
                            momentum, self.eps)

    def _short(self):
        return str(self.num_features)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L): per channel, y = (x - mean)/√(var + eps)·γ + β,
    with batch statistics while training and running ones (momentum 0.1) in eval mode.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> bn = nn.BatchNorm1d(3)
    >>> y = bn(cr.randn(16, 3))
    >>> bool(abs(y.numpy().mean(0)).max() < 1e-5)
    True
    """
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W), per channel.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> cr.manual_seed(0)
    >>> bn = nn.BatchNorm2d(3)
    >>> y = bn(cr.randn(4, 3, 5, 5))
    >>> y.shape, bool(abs(y.numpy().mean(axis=(0, 2, 3))).max() < 1e-5)
    ((4, 3, 5, 5), True)
    >>> bn.eval()(cr.zeros(1, 3, 2, 2)).shape
    (1, 3, 2, 2)
    """
    _dims = (4,)


class LayerNorm(Module):
    """Normalise over the last dimension(s) of each sample, with learned scale and shift.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.LayerNorm(4)(cr.randn(2, 4)).shape
    (2, 4)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None, device=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = empty_parameter(self.normalized_shape, dtype)
            init.ones_(self.weight)
            if bias:
                self.bias = empty_parameter(self.normalized_shape, dtype)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        place(self, device)

    def forward(self, x):
        x = ops.as_tensor(x)
        k = len(self.normalized_shape)
        if tuple(x.shape[max(x.ndim - k, 0):]) != self.normalized_shape or x.ndim < k:
            raise ShapeError(f"{self.layer_path()} got input of shape {tuple(x.shape)}, which does "
                             f"not end in {self.normalized_shape}; fix the previous layer's "
                             "output size or this layer's normalized_shape.")
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def _short(self):
        return str(self.normalized_shape)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")
