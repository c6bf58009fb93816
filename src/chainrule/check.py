"""Numerical gradient checking: the engine's Jacobian against float64 central differences."""
import numpy as np

from . import autograd, backend
from .errors import GradcheckError
from .tensor import Tensor


def _as_outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _float64_leaves(inputs):
    leaves = []
    for x in inputs:
        data = x._data if isinstance(x, Tensor) else backend.to_array(x)
        if data.dtype.kind == "f":
            # order="C": a fresh C-ordered copy, so the finite differences' flat view (a
            # reshape) perturbs this leaf itself, not a copy of a transposed input.
            leaves.append(Tensor._wrap(data.astype(np.float64, order="C")).requires_grad_())
        else:
            leaves.append(Tensor._wrap(data))
    return leaves


def _host64(t):
    """A tensor's values as a float64 NumPy array (copied from a device: the comparison of
    Jacobians runs on the host; the seeds given to the engine are moved to the device by it)."""
    return np.asarray(backend.to_host(t._data), dtype=np.float64)


def _analytical(f, xs, wanted):
    """Rows of d(out)/d(x) for every output entry, from the engine."""
    outs = [o for o in _as_outputs(f(*xs)) if isinstance(o, Tensor)]
    jac = {i: [] for i in wanted}
    for out in outs:
        for k in range(out._data.size):
            seed = np.zeros(out._data.size)
            seed[k] = 1.0
            if not out.requires_grad:
                grads = [None] * len(wanted)
            else:
                grads = autograd.grad(out, [xs[i] for i in wanted], grad_outputs=[
                    Tensor._wrap(seed.reshape(out.shape).astype(out.dtype))],
                    retain_graph=True, allow_unused=True)
            for i, g in zip(wanted, grads):
                jac[i].append(np.zeros(xs[i]._data.size) if g is None else
                              _host64(g).ravel())
    return {i: np.array(rows).reshape(len(rows), xs[i]._data.size) for i, rows in jac.items()}


def _numerical(f, xs, wanted, eps):
    def flat_out():  # with the graph on: f may itself take gradients (gradgradcheck)
        return np.concatenate([_host64(o).ravel()
                               for o in _as_outputs(f(*xs)) if isinstance(o, Tensor)])
    jac = {}
    for i in wanted:
        x = xs[i]._data
        flat = x.reshape(-1)  # a view: x is a fresh float64 array
        cols = []
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            plus = flat_out()
            flat[j] = old - eps
            minus = flat_out()
            flat[j] = old
            cols.append((plus - minus) / (2 * eps))
        jac[i] = (np.array(cols).T.reshape(-1, flat.size) if cols else
                  np.zeros((flat_out().size, 0)))  # an empty input has an empty Jacobian
    return jac


def gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Compare the engine's gradients of `f` with float64 central differences.

    Floating inputs are copied to float64 leaves. Returns True, or raises GradcheckError
    naming the worst entry (or returns False with raise_exception=False).

    >>> import chainrule as cr
    >>> cr.gradcheck(lambda x: (x.sin() * x).sum(), [cr.tensor([0.5, 1.5])])
    True
    """
    inputs = inputs if isinstance(inputs, (tuple, list)) else [inputs]
    xs = _float64_leaves(inputs)
    wanted = [i for i, x in enumerate(xs) if x.requires_grad]
    analytical = _analytical(f, xs, wanted)
    numerical = _numerical(f, xs, wanted, eps)
    worst = None
    for i in wanted:
        a, n = analytical[i], numerical[i]
        if a.shape != n.shape:
            raise GradcheckError(f"gradcheck: Jacobian shapes differ for input {i}: engine "
                                 f"{a.shape}, finite differences {n.shape}")
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        excess = np.where(np.isnan(excess), np.inf, excess)
        if excess.size and (worst is None or excess.max() > worst[0]):
            k = np.unravel_index(np.argmax(excess), excess.shape)
            worst = (excess.max(), i, k, a[k], n[k])
    if worst is None or worst[0] <= 0:
        return True
    _, i, (row, col), a_val, n_val = worst
    entry = tuple(int(c) for c in np.unravel_index(col, xs[i].shape))
    msg = (f"gradcheck failed: input {i} (shape {xs[i].shape}), entry {entry}, output entry "
           f"{int(row)}: engine says {float(a_val)!r}, finite differences say {float(n_val)!r} "
           f"(|diff| = {abs(a_val - n_val):.3e}, allowed "
           f"{atol + rtol * abs(n_val):.3e} = atol {atol} + rtol {rtol} × |numerical|)")
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradgradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check second derivatives: gradcheck of x -> VJP(f)(x, v) for a fixed random v.

    >>> import chainrule as cr
    >>> cr.gradgradcheck(lambda x: (x ** 3).sum(), [cr.tensor([0.5, -1.0])])
    True
    """
    inputs = inputs if isinstance(inputs, (tuple, list)) else [inputs]
    xs = _float64_leaves(inputs)
    rng = np.random.default_rng(seed)
    outs = _as_outputs(f(*xs))
    vs = [Tensor._wrap(rng.standard_normal(o.shape)) for o in outs]

    def first_derivative(*args):
        diff = [a for a in args if a.requires_grad]
        res = _as_outputs(f(*args))
        live = [(o, v) for o, v in zip(res, vs) if o.requires_grad]
        if not live:
            return [Tensor._wrap(np.zeros(a.shape)) for a in diff]
        gs = autograd.grad([o for o, _ in live], diff, grad_outputs=[v for _, v in live],
                           create_graph=True, allow_unused=True)
        return [Tensor._wrap(np.zeros(a.shape)) if g is None else g for a, g in zip(diff, gs)]
    return gradcheck(first_derivative, xs, eps, atol, rtol)
