"""RMSprop and Adagrad (PyTorch's equations)."""
from .. import backend
from .optimizer import Optimizer
from .sgd import _check_nonneg

np = backend.np


class RMSprop(Optimizer):
    """RMSprop as PyTorch writes it:
        g = grad + weight_decay * p;  s = alpha s + (1 - alpha) g^2
        centered: a = alpha a + (1 - alpha) g,  d = sqrt(s - a^2) + eps;  else d = sqrt(s) + eps
        momentum > 0: b = momentum b + g / d,  p <- p - lr b;  else p <- p - lr g / d

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.RMSprop([w], lr=0.01, alpha=0.99)
    >>> w.grad = cr.tensor([2.0]); opt.step()
    >>> round(w.item(), 4)           # 1 - 0.01 * 2 / sqrt(0.01 * 4)
    0.9
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, group):
        _check_nonneg("RMSprop", group, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _update(self, p, g, state, group):
        if group["maximize"]:
            g = -g
        alpha, wd, momentum = group["alpha"], group["weight_decay"], group["momentum"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        if wd:
            g = g + wd * p
        s = state["square_avg"]
        s *= alpha
        s += (1 - alpha) * g * g
        if group["centered"]:
            a = state["grad_avg"]
            a += (1 - alpha) * (g - a)
            denom = np.sqrt(s - a * a) + group["eps"]
        else:
            denom = np.sqrt(s) + group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / denom
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * g / denom


class Adagrad(Optimizer):
    """Adagrad as PyTorch writes it:
        t += 1;  g = grad + weight_decay * p;  lr_t = lr / (1 + (t - 1) lr_decay)
        s = s + g^2;  p <- p - lr_t g / (sqrt(s) + eps)

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.Adagrad([w], lr=0.1)
    >>> w.grad = cr.tensor([3.0]); opt.step()
    >>> round(w.item(), 4)           # the first step moves by lr
    0.9
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _check_group(self, group):
        _check_nonneg("Adagrad", group, "lr", "lr_decay", "weight_decay",
                      "initial_accumulator_value", "eps")

    def _update(self, p, g, state, group):
        if group["maximize"]:
            g = -g
        if not state:
            state["step"] = 0.0
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        p -= clr * g / (np.sqrt(s) + group["eps"])
