"""First-order VJP rules on plain arrays for the primitives a training step spends its time in.

The Tensor rules next to each primitive stay the definition (they also give grad of grad).
These twins compute the same numbers, operation for operation, on ndarrays; the engine uses
them when no graph of the backward pass is wanted (create_graph=False, every training step),
which skips one Tensor and one `apply` per step of each VJP: on a small MLP, most of the
backward's Python time (bench/NOTES.md). tests/test_array_vjps.py checks every twin against
its Tensor rule on the samples of tests/primitive_specs.py.
"""
import numpy as np

from . import elementwise as E
from . import fused, linalg, reductions, shape
from .registry import array_vjps


def _same(g, y, *args, **params):
    return g


def _negated(g, y, *args, **params):
    return -g


# ---- elementwise ----
array_vjps(E.ADD, _same, _same)
array_vjps(E.SUB, _same, _negated)
array_vjps(E.MUL, lambda g, y, a, b: g * b, lambda g, y, a, b: g * a)
array_vjps(E.DIV, lambda g, y, a, b: g / b, lambda g, y, a, b: -g * y / b)
array_vjps(E.NEG, _negated)
array_vjps(E.EXP, lambda g, y, x: g * y)
array_vjps(E.LOG, lambda g, y, x: g / x)
array_vjps(E.SQRT, lambda g, y, x: g / (2.0 * y))
array_vjps(E.SIN, lambda g, y, x: g * np.cos(x))
array_vjps(E.COS, lambda g, y, x: -g * np.sin(x))
array_vjps(E.TANH, lambda g, y, x: g * (1.0 - y * y))
array_vjps(E.SIGMOID, lambda g, y, x: g * (y * (1.0 - y)))
array_vjps(E.RELU, lambda g, y, x: g * (y > 0))      # bool × float: one pass, not two


# ---- matmul (NumPy's 1-D and batched rules, as linalg's Tensor rules) ----
def _mT(a):
    return np.swapaxes(a, -1, -2)


def _matmul_a(g, y, a, b):
    if b.ndim == 1:
        return g[..., None] * b
    if a.ndim == 1:
        return np.matmul(b, g[..., None])[..., 0]
    return np.matmul(g, _mT(b))


def _matmul_b(g, y, a, b):
    if a.ndim == 1:
        return g * a if b.ndim == 1 else a[:, None] * g[..., None, :]
    if b.ndim == 1:
        return a * g[..., None]
    return np.matmul(_mT(a), g)


array_vjps(linalg.MATMUL, _matmul_a, _matmul_b)


# ---- reductions and shapes ----
def _expand_reduced(g, shape_, axes, keepdims):
    if not keepdims:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape_)))
    return np.broadcast_to(g, shape_)


array_vjps(reductions.SUM, lambda g, y, x, axes, keepdims: _expand_reduced(g, x.shape, axes,
                                                                           keepdims))
array_vjps(shape.RESHAPE, lambda g, y, x, shape: g.reshape(x.shape))
array_vjps(shape.TRANSPOSE, lambda g, y, x, axes: np.transpose(g, tuple(np.argsort(axes))))
array_vjps(shape.GETITEM, lambda g, y, x, index: shape.SCATTER.forward(g, index, x.shape))
# ... and for a basic index (slices, ints: split's pieces), the engine adds g straight into
# one buffer for the input (autograd._scatter_into) instead of a full-size array per piece.
shape.GETITEM.scatter = lambda params: params["index"] if shape._is_basic(params["index"]) \
    else None


# ---- fused primitives ----
def _flat(a, n):
    return a if a.ndim == 2 else a.reshape(-1, n)


def _linear_w(g, y, x, w, b=None):
    return np.matmul(np.transpose(_flat(g, w.shape[0]), (1, 0)), _flat(x, w.shape[1]))


def _linear_b(g, y, x, w, b=None):
    return g if g.ndim == 1 else reductions.SUM.forward(_flat(g, w.shape[0]), (0,), False)


array_vjps(fused.LINEAR, lambda g, y, x, w, b=None: np.matmul(g, w), _linear_w, _linear_b)


def _sce(g, y, x, labels, reduction):
    d = fused.SOFTMAX_XENT_GRAD.forward(x, labels, reduction)
    if reduction == "none":
        return d * g[..., None]
    return d if g == 1 else d * g


array_vjps(fused.SOFTMAX_XENT, _sce)
array_vjps(fused.MAX_POOL, fused._pool_grad_array)
