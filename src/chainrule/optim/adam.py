"""Adam and AdamW (PyTorch's equations, including amsgrad)."""
import math

from .. import backend
from ..errors import OptimizerError
from .sgd import _check_nonneg
from .optimizer import Optimizer

np = backend.np


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's bias correction:
        g = grad + weight_decay * p           (AdamW decays p itself instead)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   t += 1
        p <- p - lr / (1 - b1^t) * m / (sqrt(v') / sqrt(1 - b2^t) + eps)
    with v' = running max of v when amsgrad, else v.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.Adam([w], lr=0.1)
    >>> w.grad = cr.tensor([5.0]); opt.step()
    >>> round(w.item(), 4)           # the first Adam step moves by about lr
    0.9
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _check_group(self, group):
        name = type(self).__name__
        _check_nonneg(name, group, "lr", "eps", "weight_decay")
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise OptimizerError(f"{name}: betas must be two numbers in [0, 1), got {betas!r}")

    def _update(self, p, g, state, group):
        if group["maximize"]:
            g = -g
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        if wd:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            v = vmax
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p -= (lr / (1 - beta1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p <- p (1 - lr wd) before the
    Adam step; PyTorch's default weight_decay=0.01.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = cr.tensor([0.0]); opt.step()
    >>> round(w.item(), 4)           # only the decay acts: 1 * (1 - 0.1 * 0.5)
    0.95
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
