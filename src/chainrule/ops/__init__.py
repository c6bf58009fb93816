"""Primitives (the registry) and the Tensor functions composed from them.

Importing this package registers every primitive: conv (im2col, col2im, conv2d_gemm), losses
(binary_cross_entropy) and special (erf) are imported here too, not only by chainrule.nn. It
also binds Tensor's operators and methods, from the one table in ops/methods.py.
"""
from .composites import log_softmax, logsumexp, mean, norm, softmax, std, var
from .elementwise import (abs, add, cast, clip, compare, cos, div, exp, log, maximum, minimum,
                          mul, neg, pow, relu, sigmoid, sin, sqrt, sub, tanh, where)
from .linalg import matmul
from .reductions import max, min, sum
from .registry import REGISTRY, Primitive, apply, as_tensor
from .shape import (cat, concatenate, expand, flatten, getitem, reshape, split, squeeze, stack,
                    sum_to_shape, swapaxes, transpose, unsqueeze)
from . import conv, fused, losses, special  # noqa: F401  (registers their primitives)
from .methods import install as _install_tensor_methods
_install_tensor_methods()  # binds Tensor's operators and methods (the table in ops/methods.py)
from .function import install as _install_function
_install_function()  # chainrule.autograd.Function (custom ops with a hand-written backward)
