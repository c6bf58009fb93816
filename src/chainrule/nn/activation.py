"""Activation functions as modules (each wraps the function of the same name in F)."""
from . import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0) elementwise (the gradient at 0 is 0, as in PyTorch)."""

    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Sigmoid()(cr.tensor([0.0])).tolist()
    [0.5]
    """

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x otherwise."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x·Φ(x): the exact erf form by default (PyTorch's default), or approximate='tanh'."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Softplus(Module):
    def forward(self, x):
        return F.softplus(x)


class Softmax(Module):
    """exp(x) / Σ exp(x) along `dim` (default the last axis)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim`, computed stably."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)
