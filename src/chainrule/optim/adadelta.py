"""Adadelta (PyTorch's equations)."""
from .. import backend
from .optimizer import Optimizer
from .sgd import _check_nonneg

np = backend.np


class Adadelta(Optimizer):
    """Adadelta as PyTorch writes it (lr scales the step; PyTorch's default lr is 1.0):
        g = grad + weight_decay * p;  v = rho v + (1 - rho) g^2
        d = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho u + (1 - rho) d^2;  p <- p - lr d

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = cr.optim.Adadelta([w], lr=1.0)
    >>> w.grad = cr.tensor([2.0]); opt.step()
    >>> round(w.item(), 6)           # 1 - sqrt(1e-6) / sqrt(0.1 * 4 + 1e-6) * 2
    0.996838
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _check_group(self, group):
        _check_nonneg("Adadelta", group, "lr", "eps", "weight_decay")
        if not 0.0 <= group["rho"] <= 1.0:
            from ..errors import OptimizerError
            raise OptimizerError(f"Adadelta: rho must be in [0, 1], got {group['rho']}")

    def _update(self, p, g, state, group):
        if group["maximize"]:
            g = -g
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = np.zeros_like(p)
            state["acc_delta"] = np.zeros_like(p)
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        p -= group["lr"] * delta
