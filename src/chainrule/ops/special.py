"""The error function erf as a primitive (for the exact GELU): NumPy has no erf, so the
forward uses SciPy's when it is installed and Python's math.erf elementwise otherwise (both
accurate to the last bit or two), and a device library's own where it has one (CuPy's); the derivative 2/√π·exp(-x²) is a rule like any other.
"""
import math

from .. import backend
from .elementwise import EXP
from .registry import Primitive, apply, as_tensor

np = backend.np

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf_forward(x):
    own = None if type(x) is np.ndarray else backend.kind_of(x).special.get("erf")
    if own is not None:
        return own(x).astype(x.dtype, copy=False)
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:  # SciPy is optional: fall back to the standard library
        return np.vectorize(math.erf, otypes=[x.dtype])(x).astype(x.dtype, copy=False)
    return scipy_erf(x).astype(x.dtype, copy=False)


ERF = Primitive("erf", _erf_forward, [lambda g, y, x: g * (EXP(-(x * x)) * _TWO_OVER_SQRT_PI)],
                formula="erf(x) = 2/√π ∫₀ˣ exp(-t²) dt", derivs=["2/√π·exp(-x²)"],
                saves=("inputs",), elementwise=True, rounded=True, derivs_rounded=True)


def erf(x):
    """The error function, elementwise.

    >>> import chainrule as cr
    >>> round(erf(cr.tensor(1.0)).item(), 5)
    0.8427
    """
    return apply(ERF, (as_tensor(x),))
