"""Loss functions as modules; each calls the function of the same name in F with the options
given at construction. reduction is 'mean' (default), 'sum' or 'none'."""
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or "
                             f"'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """(o - t)² averaged; half=True gives the seeds' ½(t - o)².

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.MSELoss(half=True)(cr.tensor([0.75]), cr.tensor([0.25])).item()
    0.125
    """

    def __init__(self, reduction="mean", half=False):
        super().__init__(reduction)
        self.half = half

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction, self.half)


class L1Loss(_Loss):
    """Mean absolute error |o - t| (reduction 'mean', 'sum' or 'none').

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.L1Loss()(cr.tensor([1.0, 4.0]), cr.tensor([2.0, 2.0])).item()
    1.5
    """

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities (apply sigmoid first).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> round(nn.BCELoss()(cr.tensor([0.5, 0.5]), cr.tensor([1.0, 0.0])).item(), 4)
    0.6931
    """

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one stable step, on raw scores.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> x = cr.tensor([0.0], requires_grad=True)
    >>> loss = nn.BCEWithLogitsLoss()(x, cr.tensor([1.0]))
    >>> loss.backward()
    >>> round(loss.item(), 4), x.grad.tolist()
    (0.6931, [-0.5])
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on raw scores; targets are integer labels or probabilities.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> round(nn.CrossEntropyLoss()(cr.tensor([[0.0, 0.0]]), cr.tensor([1])).item(), 4)
    0.6931
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of integer labels given log-probabilities (after LogSoftmax).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> logp = nn.LogSoftmax(dim=1)(cr.tensor([[2.0, 0.0, 0.0]]))
    >>> round(nn.NLLLoss()(logp, cr.tensor([0])).item(), 4)
    0.2395
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)
