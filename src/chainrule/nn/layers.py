"""Basic layers: Linear, Identity, Flatten, Dropout, Embedding."""
import numpy as np

from .. import backend, ops
from ..errors import DTypeError, ShapeError
from ..ops.fused import LINEAR
from ..ops.registry import apply
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def empty_parameter(shape, dtype=None):
    """An uninitialised Parameter of the default (or given) floating dtype."""
    dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype, "layer")
    for n in shape:  # sizes come from the user's layer arguments: say plainly what is wrong
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            error = ShapeError if isinstance(n, (int, np.integer)) else DTypeError
            raise error(f"layer size {n!r} (parameter shape {tuple(shape)!r}) must be a "
                        "positive int, e.g. nn.Linear(784, 128).")
    return Parameter(np.zeros(shape, dtype=dtype))


def place(module, device):
    """PyTorch's `device=` layer argument: the parameters are made and initialised on the host
    (the same numbers as on the CPU), then the layer moves there. Without it, the layer goes
    to the default device (`set_default_device`, `with cr.device(...)`), as in PyTorch 2;
    while that is the CPU (None) nothing moves."""
    if device is None:
        device = backend.default_device()
        if device is None:
            return
    module.to(device)


def check_features(module, x, expected, axis, what, layout=""):
    """Raise a ShapeError naming the layer's place in the model when x's size is wrong."""
    if x.ndim == 0 or x.ndim <= (axis if axis >= 0 else -axis - 1):
        raise ShapeError(f"{module.layer_path()} got an input of shape {tuple(x.shape)}; it needs "
                         f"{what} on axis {axis}{' ' + layout if layout else ''}.")
    if x.dtype.kind != "f":
        raise DTypeError(f"{module.layer_path()} got input of dtype {x.dtype}; it needs floating "
                         "point values: convert with x.float() (or x.astype(cr.float32)).")
    got = x.shape[axis]
    if got != expected:
        raise ShapeError(f"{module.layer_path()} got input with {got} {what} (input shape "
                         f"{tuple(x.shape)}), but it expects {expected}; fix the previous "
                         "layer's output size or this layer's input size.")


class Linear(Module):
    """y = x Wᵀ + b, with weight (out_features, in_features) and PyTorch's default init
    (U(±1/√in_features) for both weight and bias).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> layer = nn.Linear(3, 2)
    >>> layer.weight.shape, layer(cr.ones(5, 3)).shape
    ((2, 3), (5, 2))
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = empty_parameter((out_features, in_features), dtype)
        self.bias = empty_parameter((out_features,), dtype) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters()
        place(self, device)

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        # The hot path of every MLP: one test for a well-formed input (check_features raises
        # the precise error otherwise), the parameters read from their table, one primitive.
        if not isinstance(x, Tensor):
            x = ops.as_tensor(x)
        d = x._data
        if d.ndim == 0 or d.dtype.kind != "f" or d.shape[-1] != self.in_features:
            check_features(self, x, self.in_features, -1, "features")
        params = self._parameters
        w, b = params.get("weight"), params.get("bias")
        if w is None or w._data.ndim != 2 or (b is not None and b._data.ndim != 1):
            return F.linear(x, self.weight, self.bias)
        return apply(LINEAR, (x, w) if b is None else (x, w, b))

    def _short(self):
        return f"{self.in_features}->{self.out_features}"

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder layer).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Identity(54, unused="ignored")(cr.tensor([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flatten axes start_dim..end_dim into one (default: all but the batch axis).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Flatten()(cr.ones(2, 3, 4)).shape
    (2, 12)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Zero entries with probability p while training (scaling the rest by 1/(1-p)); the
    identity in eval mode. Draws from the generator that `cr.manual_seed` seeds.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> cr.manual_seed(0)
    >>> drop = nn.Dropout(0.5)
    >>> drop(cr.ones(6)).tolist()
    [2.0, 0.0, 0.0, 0.0, 2.0, 2.0]
    >>> drop.eval()(cr.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table of num_embeddings vectors of size embedding_dim, initialised N(0, 1)
    (PyTorch); the row at padding_idx starts at zero and is never updated.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Embedding(10, 4)(cr.tensor([[1, 2, 3]])).shape
    (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None,
                 device=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} is outside the table of "
                             f"{num_embeddings} rows")
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.weight = empty_parameter((num_embeddings, embedding_dim), dtype)
        self.reset_parameters()
        place(self, device)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)

    def _short(self):
        return f"{self.num_embeddings}x{self.embedding_dim}"

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
