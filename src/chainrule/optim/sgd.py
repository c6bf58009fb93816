"""Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight decay."""
from ..errors import OptimizerError
from .optimizer import Optimizer, required


class SGD(Optimizer):
    """p <- p - lr * d, where (PyTorch's equations)
        g = grad + weight_decay * p
        b = g on the first step, else momentum * b + (1 - dampening) * g
        d = g + momentum * b if nesterov else b     (d = g when momentum == 0)

    >>> import chainrule as cr
    >>> w = cr.tensor([0.3], requires_grad=True)
    >>> opt = cr.optim.SGD([w], lr=0.5)
    >>> w.grad = cr.tensor([-0.02895543]); opt.step()
    >>> round(w.item(), 6)          # the seed's w_o update: 0.3 - 0.5 * (-0.02895543)
    0.314478
    """

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, group):
        _check_nonneg("SGD", group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError("SGD: nesterov=True needs momentum > 0 and dampening = 0 "
                                 f"(got momentum={group['momentum']}, "
                                 f"dampening={group['dampening']})")

    def _update(self, p, g, state, group):
        if group["maximize"]:
            g = -g
        wd, momentum = group["weight_decay"], group["momentum"]
        if wd:
            g = g + wd * p
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * g


def _check_nonneg(name, group, *keys):
    for key in keys:
        value = group[key]
        if not isinstance(value, (int, float)) or value < 0:
            raise OptimizerError(f"{name}: {key} must be a number >= 0, got {value!r}")
