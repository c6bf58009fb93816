"""chainrule: reverse-mode automatic differentiation on NumPy, PyTorch-shaped, with
textbook-style explanations of every backward pass.

Public names only; each lives in the module named for it.
"""
from .tensor import Tensor  # the value type; `from .ops import ...` below binds its methods
from . import autograd, errors
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (Generator, bool_, default_generator, device, float16, float32, float64,
                      get_default_dtype, get_rng_state, int8, int16, int32, int64, manual_seed,
                      num_threads, set_default_dtype, set_num_threads, set_rng_state, uint8)
from .backend import get_default_device, set_default_device
from .check import gradcheck, gradgradcheck
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, multinomial, normal, ones, ones_like, rand, rand_like, randint,
                       randn, randn_like, randperm, tensor, zeros, zeros_like)
from .ops import (abs, clip, cos, exp, expand, flatten, log, matmul, maximum, minimum, relu,
                  reshape, sigmoid, sin, sqrt, tanh, transpose, where)
from .ops.keywords import (all, amax, amin, any, argmax, argmin, cat, concatenate, log_softmax,
                           logsumexp, max, mean, min, norm, softmax, split, squeeze, stack, std,
                           sum, unsqueeze, var)
from .ops.compat import (allclose, eq, equal, gather, ge, gt, histc, histogram, is_tensor,
                         isfinite, isinf, isnan, le, log10, log2, lt, masked_fill, narrow, ne,
                         sort, topk)
from .transforms import grad, hessian, hvp, jacobian, jvp, value_and_grad

__version__ = "0.1.0"

# PyTorch's dtype names (torch.long, torch.float, ...), so dtype=torch.long ports unchanged
long, int, short, float, double, half, bool = int64, int32, int16, float32, float64, float16, bool_

# Submodules and features loaded on first use, so `import chainrule` stays light.
_LAZY = {
    "nn": ("chainrule.nn", None),
    "optim": ("chainrule.optim", None),
    "data": ("chainrule.data", None),
    "io": ("chainrule.io", None),
    "train": ("chainrule.train", None),
    "distributed": ("chainrule.distributed", None),
    "explain": ("chainrule.explain", "explain"),
    "compile": ("chainrule.static", "compile"),     # static graphs: capture once, replay
    "detect_anomaly": ("chainrule.anomaly", "detect_anomaly"),
    "utils": ("chainrule.utils", None),             # chainrule.utils.data: torch.utils.data
    "cuda": ("chainrule.cuda", None),               # torch.cuda's queries; CuPy loads lazily
    "backends": ("chainrule.backends", None),       # torch.backends' switches (cudnn, ...)
    "amp": ("chainrule.amp", None),                 # autocast (precision kept), GradScaler
    "autocast": ("chainrule.amp", "autocast"),
    "is_autocast_enabled": ("chainrule.amp", "is_autocast_enabled"),
    "save": ("chainrule.io", "save"),
    "load": ("chainrule.io", "load"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    import importlib
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
