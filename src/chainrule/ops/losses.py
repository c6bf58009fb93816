"""Binary cross-entropy on probabilities as one primitive, for numerical stability: composed
from log it would give log(0) = -inf and an infinite gradient at p = 0 or 1. As in PyTorch,
the forward clamps each log at -100 and the backward divides by max(p(1 - p), 1e-12).
"""
from .. import backend
from .elementwise import CLIP, LOG, MAXIMUM
from .registry import Primitive, apply

np = backend.np

LOG_FLOOR = -100.0     # PyTorch's clamp of ln p and ln(1 - p)
DENOM_FLOOR = 1e-12    # PyTorch's floor of p(1 - p) in the gradient


def _bce_forward(p, t):
    with np.errstate(divide="ignore"):
        lp = np.maximum(np.log(p), LOG_FLOOR)
        lq = np.maximum(np.log1p(-p), LOG_FLOOR)
    return -(t * lp + (1 - t) * lq)


def _safe_log(x):
    """ln x clamped at -100 (x ≥ 0), without taking log(0)."""
    tiny = np.finfo(x.dtype).tiny
    return CLIP(LOG(CLIP(x, lo=tiny, hi=None)), lo=LOG_FLOOR, hi=None)


def _grad_p(g, y, p, t):
    return g * (p - t) / MAXIMUM(p * (1.0 - p), DENOM_FLOOR)


def _grad_t(g, y, p, t):
    return g * (_safe_log(1.0 - p) - _safe_log(p))


BCE = Primitive("binary_cross_entropy", _bce_forward, [_grad_p, _grad_t], inputs=("p", "t"),
                formula="-(t·ln p + (1 - t)·ln(1 - p))",
                derivs=["(p - t) / (p(1 - p))", "ln(1 - p) - ln p"], saves=("inputs",),
                elementwise=True, loss="binary-cross-entropy", derivs_rounded=True,
                hint="p and t must have the same shape, with values in [0, 1].")


def bce(p, t):
    """Elementwise binary cross-entropy of probabilities p against targets t (no checks:
    `nn.functional.binary_cross_entropy` validates and reduces).

    >>> import chainrule as cr
    >>> [round(v, 4) for v in bce(cr.tensor([0.5, 1.0]), cr.tensor([1.0, 0.0])).tolist()]
    [0.6931, 100.0]
    """
    return apply(BCE, (p, t))
