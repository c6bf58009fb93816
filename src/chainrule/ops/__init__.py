"""Primitives (the registry) and the Tensor functions composed from them."""
from .elementwise import (abs, add, cast, clip, compare, cos, div, exp, log, maximum, minimum,
                          mul, neg, pow, relu, sigmoid, sin, sqrt, sub, tanh, where)
from .linalg import matmul
from .reductions import logsumexp, log_softmax, max, mean, min, softmax, std, sum, var
from .registry import REGISTRY, Primitive, apply, as_tensor
from .shape import (cat, concatenate, expand, flatten, getitem, reshape, split, squeeze, stack,
                    sum_to_shape, swapaxes, transpose, unsqueeze)
