"""Activation functions as modules (each wraps the function of the same name in F)."""
from . import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0) elementwise (the gradient at 0 is 0, as in PyTorch).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.ReLU()(cr.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """

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
    """tanh(x) elementwise; its derivative is 1 - tanh(x)².

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Tanh()(cr.tensor([0.0])).tolist()
    [0.0]
    """

    def forward(self, x):
        return F.tanh(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x otherwise.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.LeakyReLU(0.5)(cr.tensor([-2.0, 3.0])).tolist()
    [-1.0, 3.0]
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x·Φ(x): the exact erf form by default (PyTorch's default), or approximate='tanh'.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> [round(v, 4) for v in nn.GELU()(cr.tensor([-1.0, 0.0, 1.0])).tolist()]
    [-0.1587, 0.0, 0.8413]
    >>> round(nn.GELU(approximate="tanh")(cr.tensor(1.0)).item(), 4)
    0.8412
    """

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x·sigmoid(x) elementwise (also called swish).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.SiLU()(cr.tensor([0.0, 1e4])).tolist()
    [0.0, 10000.0]
    """

    def forward(self, x):
        return F.silu(x)


class Softplus(Module):
    """log(1 + exp(x)) elementwise, a smooth ReLU whose derivative is sigmoid(x).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> [round(v, 4) for v in nn.Softplus()(cr.tensor([0.0, 100.0])).tolist()]
    [0.6931, 100.0]
    """

    def forward(self, x):
        return F.softplus(x)


class Softmax(Module):
    """exp(x) / Σ exp(x) along `dim` (default the last axis).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Softmax(dim=1)(cr.tensor([[1.0, 1.0, 1.0, 1.0]])).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim`, computed stably.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> y = nn.LogSoftmax(dim=1)(cr.tensor([[0.0, 0.0]]))
    >>> [round(v, 4) for v in y.exp().sum(1).tolist()]
    [1.0]
    """

    def forward(self, x):
        return F.log_softmax(x, self.dim)
