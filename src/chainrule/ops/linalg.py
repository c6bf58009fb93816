"""Matrix multiplication: 1-D, 2-D and batched with broadcasting (NumPy's matmul rules)."""
from .. import backend
from .registry import Primitive, apply, lift_pair
from .shape import TRANSPOSE

np = backend.np


def _mT(a):
    """The last two axes swapped (arrays and Tensors)."""
    axes = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return TRANSPOSE(a, axes=axes)


def _col(v):
    """`v` with a trailing axis of length 1 (arrays and Tensors)."""
    return v.reshape(v.shape + (1,))


def _grad_a(g, y, a, b):
    if b.ndim == 1:                     # (..., n) @ (n,) -> (...)
        return _col(g) * b
    if a.ndim == 1:                     # (n,) @ (..., n, m) -> (..., m)
        return MATMUL(b, _col(g)).reshape(g.shape[:-1] + (b.shape[-2],))
    return MATMUL(g, _mT(b))


def _grad_b(g, y, a, b):
    if a.ndim == 1:
        if b.ndim == 1:                 # dot product
            return g * a
        return _col(a) * g.reshape(g.shape[:-1] + (1, g.shape[-1]))
    if b.ndim == 1:
        return a * _col(g)
    return MATMUL(_mT(a), g)


MATMUL = Primitive(
    "matmul", np.matmul, [_grad_a, _grad_b], inputs="ab", formula="a @ b",
    derivs=["b (as gᵀ-side factor: g @ bᵀ)", "a (as aᵀ @ g)"], saves=("inputs",),
    reads=((1,), (0,)),
    linear=False, symbol="@", precedence=2, layer_role="product",
    hint="The last dimension of a must equal the second-to-last of b (a: (..., n, k), "
         "b: (..., k, m)); transpose an operand (.T) or check the layer sizes.")


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

