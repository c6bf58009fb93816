"""Matrix multiplication: 1-D, 2-D and batched with broadcasting (NumPy's matmul rules)."""
import numpy as np

from .registry import Primitive, apply, lift_pair


def _mT(a):
    """The last two axes swapped, on arrays (the array twins' `.mT`)."""
    return np.swapaxes(a, -1, -2)


def _grad_a(g, y, a, b):
    if b.ndim == 1:                     # (..., n) @ (n,) -> (...)
        return g.unsqueeze(-1) * b
    if a.ndim == 1:                     # (n,) @ (..., n, m) -> (..., m)
        return (b @ g.unsqueeze(-1)).squeeze(-1)
    return g @ b.mT


def _grad_a_array(g, y, a, b):          # _grad_a's first-order twin on arrays
    if b.ndim == 1:
        return g[..., None] * b
    if a.ndim == 1:
        return np.matmul(b, g[..., None])[..., 0]
    return np.matmul(g, _mT(b))


def _grad_b(g, y, a, b):
    if a.ndim == 1:
        if b.ndim == 1:                 # dot product
            return g * a
        return a.unsqueeze(-1) * g.unsqueeze(-2)
    if b.ndim == 1:
        return a * g.unsqueeze(-1)
    return a.mT @ g


def _grad_b_array(g, y, a, b):          # _grad_b's first-order twin on arrays
    if a.ndim == 1:
        return g * a if b.ndim == 1 else a[:, None] * g[..., None, :]
    if b.ndim == 1:
        return a * g[..., None]
    return np.matmul(_mT(a), g)


MATMUL = Primitive(
    "matmul", np.matmul, [_grad_a, _grad_b], "a @ b", ["b (as gᵀ-side factor: g @ bᵀ)",
                                                       "a (as aᵀ @ g)"],
    "The last dimension of a must equal the second-to-last of b (a: (..., n, k), "
    "b: (..., k, m)); transpose an operand (.T) or check the layer sizes.",
    array_vjps=[_grad_a_array, _grad_b_array])


def matmul(a, b):
    """Matrix product with NumPy's rules for 1-D operands and broadcast batch dimensions.

    >>> import chainrule as cr
    >>> a = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> b = cr.tensor([1.0, 1.0])
    >>> y = cr.matmul(a, b)
    >>> y.sum().backward()
    >>> y.tolist(), a.grad.tolist()
    ([3.0, 7.0], [[1.0, 1.0], [1.0, 1.0]])
    >>> cr.matmul(cr.ones(5, 2, 3), cr.ones(3, 4)).shape
    (5, 2, 4)
    """
    a, b = lift_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        from ..errors import ShapeError
        raise ShapeError(f"matmul: operands must have at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}; use * to multiply by a scalar.")
    return apply(MATMUL, (a, b))
