"""JAX-style function transforms built on the reverse-mode engine.

Each transform makes its arguments leaves that require grad, runs `f` with the graph on, and
asks `autograd.grad` for the answer. When an argument already requires grad (the transform
is nested inside another, e.g. `hessian = jacobian(grad(f))`), the inner backward pass is
itself recorded (create_graph) so the outer transform can differentiate it.
"""

from . import autograd, backend
from .autograd import enable_grad
from .errors import GraphError
from .ops import stack
from .tensor import Tensor


def _leaf(x):
    if isinstance(x, Tensor):
        if x.requires_grad:
            return x, True
        data = x._data
    else:
        data = backend.to_array(x)
    if data.dtype.kind != "f":
        data = data.astype(backend.get_default_dtype())
    return Tensor._wrap(data).requires_grad_(), False


def _prepare(args, argnums):
    args, nested = list(args), False
    for i in argnums:
        args[i], was_tracked = _leaf(args[i])
        nested = nested or was_tracked
    return args, nested


def _argnums(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _zeros(shape, like):
    """Zeros of `shape` in the dtype and on the device of the tensor `like`."""
    return Tensor._wrap(backend.xp_of(like._data).zeros(shape, like.dtype))


def _grads_or_zeros(out, inputs, create_graph, grad_outputs=None, retain_graph=None):
    if not out.requires_grad:
        return [_zeros(t.shape, t) for t in inputs]
    gs = autograd.grad(out, inputs, grad_outputs=grad_outputs, create_graph=create_graph,
                       retain_graph=retain_graph, allow_unused=True)
    return [_zeros(t.shape, t) if g is None else g for g, t in zip(gs, inputs)]


def value_and_grad(f, argnums=0, has_aux=False):
    """A function returning (f(*args), ∇f(*args)) for scalar-valued `f`.

    >>> import chainrule as cr
    >>> v, g = cr.value_and_grad(lambda x: (x ** 3).sum())(cr.tensor([2.0]))
    >>> v.item(), g.tolist()
    (8.0, [12.0])
    """
    nums = _argnums(argnums)

    def wrapped(*args, **kwargs):
        args, nested = _prepare(args, nums)
        with enable_grad():
            out = f(*args, **kwargs)
        aux = None
        if has_aux:
            out, aux = out
        if not isinstance(out, Tensor) or out._data.size != 1:
            shape = getattr(out, "shape", type(out).__name__)
            raise GraphError(f"grad: f must return a scalar Tensor, got {shape}; reduce it "
                             "(e.g. .sum()) or use cr.jacobian for vector outputs.")
        grads = _grads_or_zeros(out, [args[i] for i in nums], nested)
        if not nested:
            out = out.detach()
        result = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((out, aux), result) if has_aux else (out, result)
    return wrapped


def grad(f, argnums=0, has_aux=False):
    """The gradient function of scalar-valued `f` (JAX's `grad`); composes with itself.

    >>> import chainrule as cr
    >>> d2 = cr.grad(cr.grad(lambda x: x ** 3))
    >>> d2(cr.tensor(2.0)).item()
    12.0
    """
    vg = value_and_grad(f, argnums, has_aux)

    def wrapped(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapped


def jacobian(f, argnums=0):
    """The Jacobian of `f`, shaped out.shape + arg.shape (one backward pass per output entry).

    >>> import chainrule as cr
    >>> cr.jacobian(lambda x: x ** 2)(cr.tensor([1.0, 3.0])).tolist()
    [[2.0, 0.0], [0.0, 6.0]]
    """
    nums = _argnums(argnums)

    def wrapped(*args, **kwargs):
        args, nested = _prepare(args, nums)
        with enable_grad():
            out = f(*args, **kwargs)
        inputs = [args[i] for i in nums]
        rows = [[] for _ in inputs]
        eye = backend.xp_of(out._data).eye(max(out._data.size, 1), dtype=out.dtype)
        for k in range(out._data.size):
            seed = Tensor._wrap(eye[k].reshape(out.shape))
            gs = _grads_or_zeros(out, inputs, nested, grad_outputs=seed, retain_graph=True)
            for r, g in zip(rows, gs):
                r.append(g)
        jacs = [stack(r).reshape(out.shape + t.shape) if r else
                _zeros(out.shape + t.shape, t) for r, t in zip(rows, inputs)]
        if not nested:
            jacs = [j.detach() for j in jacs]
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)
    return wrapped


def hessian(f, argnums=0):
    """Second derivatives of scalar-valued `f`: jacobian(grad(f)).

    >>> import chainrule as cr
    >>> cr.hessian(lambda x: (x[0] * x[1]) ** 2)(cr.tensor([1.0, 2.0])).tolist()
    [[8.0, 8.0], [8.0, 2.0]]
    """
    return jacobian(grad(f, argnums), argnums)


def hvp(f, x, v):
    """(f(x), H(x) @ v): a Hessian-vector product without forming H (torch.autograd.functional
    order of results).

    >>> import chainrule as cr
    >>> value, hv = cr.hvp(lambda x: (x ** 3).sum(), cr.tensor([1.0, 2.0]), [1.0, 1.0])
    >>> hv.tolist()
    [6.0, 12.0]
    """
    (x,), nested = _prepare((x,), (0,))
    if not isinstance(v, Tensor):
        v = Tensor._wrap(backend.beside(backend.to_array(v, x.dtype), x._data))
    with enable_grad():
        out = f(x)
        (g,) = _grads_or_zeros(out, [x], True)
        (hv,) = _grads_or_zeros((g * v).sum(), [x], nested)
    return (out if nested else out.detach()), hv


def _tangent(v, x):
    """A tangent as a tensor of its primal's dtype (Python floats would otherwise become the
    default float32 and cost a float64 primal its precision) and shape."""
    if not isinstance(v, Tensor):
        v = Tensor._wrap(backend.beside(backend.to_array(v, x.dtype), x._data))
    if v.shape != x.shape:
        raise GraphError(f"jvp: a tangent of shape {v.shape} for a primal of shape {x.shape}; "
                         "each tangent must have its primal's shape.")
    return v


def jvp(f, primals, tangents):
    """(f(*primals), J @ tangents): forward-mode derivative by the double-VJP construction.

    J @ v = ∂/∂u ⟨Jᵀu, v⟩ : the VJP is linear in u, so differentiating it with respect to u
    gives the Jacobian-vector product exactly.

    >>> import chainrule as cr
    >>> out, jv = cr.jvp(lambda x: x.sin(), cr.tensor([0.0]), [2.0])
    >>> jv.tolist()
    [2.0]
    """
    single = not isinstance(primals, (tuple, list))
    primals = (primals,) if single else tuple(primals)
    tangents = (tangents,) if single else tuple(tangents)
    xs, nested = _prepare(primals, range(len(primals)))
    if len(tangents) != len(xs):
        raise GraphError(f"jvp: {len(xs)} primals but {len(tangents)} tangents; give one "
                         "tangent per primal, each of the primal's shape.")
    tangents = [_tangent(v, x) for v, x in zip(tangents, xs)]
    with enable_grad():
        out = f(*xs)
        u = _zeros(out.shape, out).requires_grad_()
        vjps = _grads_or_zeros(out, xs, True, grad_outputs=u)
        total = None
        for g, v in zip(vjps, tangents):
            term = (g * v).sum()
            total = term if total is None else total + term
        (jv,) = _grads_or_zeros(total, [u], nested)
    return (out if nested else out.detach()), jv
