"""A sample spec for every primitive in `chainrule.ops.REGISTRY`.

The per-primitive tests (gradcheck, gradgradcheck, PyTorch parity) are generated from this
table, and a completeness test fails when a registered primitive has no entry here, so no op
can be added untested.

Each `Sample` calls the primitive through the public API (`fn`, on chainrule Tensors) and,
for the PyTorch comparison, the same computation in torch (`torch_fn(torch, *tensors)`).
`args` are the differentiable inputs as float64 arrays; anything else (indices, axes, masks,
Python-scalar operands) lives in the closures. Inputs stay away from kinks (0 for relu/abs,
ties for max/maximum, the bounds of clip) and inside domains (log, sqrt, pow bases > 0), so
finite differences are meaningful; the tie conventions are tested separately.

Where a primitive's inputs are drawn is a fact of its registry entry, its `domain`: the sample
makers below come from `makers(name)`, which reads it ("any" -> anyval, "nonzero" -> away,
"positive" -> positive, "distinct" -> distinct; an entry may give one per input), and
tests/test_primitives.py checks that every sample of a primitive whose domain
is not "any" reaches the primitive with inputs inside that domain.
"""
import importlib
import pkgutil
from typing import Callable, NamedTuple

import numpy as np

import chainrule as cr


def load_all_primitives():
    """Import every chainrule module, so any primitive registered outside chainrule.ops is in
    REGISTRY too (today all of them live in chainrule.ops, which registers them on import)."""
    for info in pkgutil.walk_packages(cr.__path__, "chainrule."):
        importlib.import_module(info.name)
    return cr.ops.REGISTRY


load_all_primitives()
import chainrule.nn.functional as F  # noqa: E402  (after the registry is complete)


class Sample(NamedTuple):
    label: str
    args: tuple
    fn: Callable
    torch_fn: Callable
    outside_domain: str = ""   # why this sample leaves the entry's domain on purpose


class Spec(NamedTuple):
    samples: list
    second_order: bool = True   # gradgradcheck it (every rule is written with Tensor ops)


_rng = np.random.default_rng(1234)


# ---- sample makers, one per registry domain (rng: a generator of one's own; default the
# shared stream of this module, whose draws in this order fix every sample's values) ----
def anyval(*shape, rng=None):
    """Values in [-2, 2]."""
    return (rng or _rng).uniform(-2.0, 2.0, shape)


def away(*shape, rng=None):
    """|values| in [0.3, 2]: away from the kinks of relu/abs at 0."""
    rng = rng or _rng
    return rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def positive(*shape, rng=None):
    """Values in [0.5, 2]: inside the domains of log, sqrt and a real power."""
    return (rng or _rng).uniform(0.5, 2.0, shape)


def distinct(*shape, rng=None):
    """A permutation of well-separated values: no ties for max/min/maximum."""
    n = int(np.prod(shape, dtype=np.int64))
    return ((rng or _rng).permutation(n) * 0.37 - 0.5 * 0.37 * n).reshape(shape)


DOMAIN_MAKERS = {"any": anyval, "nonzero": away, "positive": positive, "distinct": distinct}
# How far inside its domain every sample value lies: the makers' own bounds (|x| >= 0.3,
# x >= 0.5, gaps of 0.37), far beyond finite-difference steps.
MARGINS = {"nonzero": 0.3, "positive": 0.5, "distinct": 0.3}



def input_domains(name):
    """Per input of primitive `name`, the domain its samples are drawn from."""
    prim = cr.ops.REGISTRY[name]
    n = len(prim.inputs) if not prim.variadic else 1
    return tuple(prim.input_domain(i) for i in range(n))


def makers(name):
    """Per input of primitive `name`, the sample maker of its domain."""
    return tuple(DOMAIN_MAKERS[d] for d in input_domains(name))


def inside(domain, arrays):
    """Whether the values of `arrays` lie inside `domain` by its margin ("distinct": all the
    values of all the arrays together, no two closer than the margin)."""
    v = np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays] + [[]])
    if domain == "nonzero":
        return bool(np.all(np.abs(v) >= MARGINS[domain]))
    if domain == "positive":
        return bool(np.all(v >= MARGINS[domain]))
    if domain == "distinct":
        return bool(np.all(np.diff(np.sort(v)) >= MARGINS[domain]))
    return domain == "any"


def draw(domains, shapes, seed):
    """Fresh inputs of these shapes, each from its domain, input i from generator seed + i;
    "distinct" inputs share one draw from the first of them (no ties between them either)."""
    out, shared = [None] * len(shapes), [i for i, d in enumerate(domains) if d == "distinct"]
    for i, (domain, shape) in enumerate(zip(domains, shapes)):
        if domain != "distinct":
            out[i] = DOMAIN_MAKERS[domain](*shape, rng=np.random.default_rng(seed + i))
    if shared:
        sizes = [int(np.prod(shapes[i], dtype=np.int64)) for i in shared]
        values = distinct(sum(sizes), rng=np.random.default_rng(seed + shared[0]))
        for i, piece in zip(shared, np.split(values, np.cumsum(sizes)[:-1])):
            out[i] = piece.reshape(shapes[i])
    return out


# ---- shape sets ----
UNARY_SHAPES = [(), (4,), (2, 3), (2, 1, 3)]
BINARY_SHAPES = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)),
                 ((2, 3), ()), ((2, 1, 3), (4, 1))]


def _unary(name, fn, torch_fn):
    (make,) = makers(name)
    return [Sample(f"x{s}", (make(*s),), fn, torch_fn) for s in UNARY_SHAPES]


def _binary(name, fn, torch_fn, scalar_b=1.7, scalar_a=0.6):
    make_a, make_b = makers(name)
    out = [Sample(f"a{sa} b{sb}", (make_a(*sa), make_b(*sb)), fn, torch_fn)
           for sa, sb in BINARY_SHAPES]
    # a Python scalar on either side (the reflected operators)
    out.append(Sample(f"a(2,3) {scalar_b!r}", (make_a(2, 3),),
                      lambda a: fn(a, scalar_b), lambda t, a: torch_fn(t, a, scalar_b)))
    out.append(Sample(f"{scalar_a!r} b(2,3)", (make_b(2, 3),),
                      lambda b: fn(scalar_a, b), lambda t, b: torch_fn(t, scalar_a, b)))
    return out


def _pairwise(name, fn, torch_fn):
    """maximum/minimum: both operands drawn in one go from the domain (distinct: no ties)."""
    make = makers(name)[0]
    out = []
    for sa, sb in BINARY_SHAPES:
        na, nb = int(np.prod(sa, dtype=np.int64)), int(np.prod(sb, dtype=np.int64))
        v = make(na + nb)
        out.append(Sample(f"a{sa} b{sb}", (v[:na].reshape(sa), v[na:].reshape(sb)),
                          fn, torch_fn))
    return out


# ---- reductions ----
REDUCE_CASES = [((), None, False), ((), 0, False), ((), -1, True), ((4,), None, False),
                ((4,), 0, True), ((2, 3), 1, False), ((2, 3), -2, True), ((2, 3, 2), (0, 2), False), ((2, 3, 2), (0, -1), True),
                ((2, 3, 2), None, True)]


def _torch_dims(axis):
    return axis if axis is None or isinstance(axis, int) else tuple(axis)


def _reduction(cr_name, torch_name):
    (make,) = makers(cr_name)
    out = []
    for shape, axis, keep in REDUCE_CASES:
        def fn(x, axis=axis, keep=keep):
            return getattr(cr, cr_name)(x, axis=axis, keepdims=keep)

        def torch_fn(t, x, axis=axis, keep=keep):
            if axis is None:
                r = getattr(x, torch_name)()
                return r.reshape((1,) * x.ndim) if keep else r
            return getattr(x, torch_name)(dim=_torch_dims(axis), keepdim=keep)
        out.append(Sample(f"x{shape} axis={axis} keepdims={keep}", (make(*shape),), fn, torch_fn))
    return out


# ---- matmul ----
MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
                 ((2, 2, 3), (3, 2)), ((3,), (2, 3, 2)), ((2, 2, 3), (3,)),
                 ((2, 1, 2, 3), (3, 3, 2)), ((1, 2, 3), (2, 3, 2))]


def _matmul():
    make_a, make_b = makers("matmul")
    return [Sample(f"a{sa} @ b{sb}", (make_a(*sa), make_b(*sb)),
                   lambda a, b: a @ b, lambda t, a, b: a @ b) for sa, sb in MATMUL_SHAPES]


# ---- indexing ----
def _index_samples():
    rep = np.array([0, 2, 2, 1, 0])                  # repeated indices accumulate
    mask = np.array([[True, False, True], [False, False, True]])
    cases = [
        ("x[1]", (3, 4), lambda x: x[1], lambda t, x: x[1]),
        ("x[-1, 1:3]", (3, 4), lambda x: x[-1, 1:3], lambda t, x: x[-1, 1:3]),
        ("x[::2, ::-1] (negative step)", (3, 4),
         lambda x: x[::2, ::-1], lambda t, x: x[::2].flip(1)),
        ("x[None, ..., 1]", (2, 3, 4), lambda x: x[None, ..., 1], lambda t, x: x[None, ..., 1]),
        ("x[int array with repeats]", (3, 2), lambda x: x[rep],
         lambda t, x: x[t.as_tensor(rep)]),
        ("x[list with repeats]", (4,), lambda x: x[[1, 1, 3, 1]],
         lambda t, x: x[[1, 1, 3, 1]]),
        ("x[rows, cols] (pairs repeat)", (3, 3), lambda x: x[rep[:4], rep[1:]],
         lambda t, x: x[t.as_tensor(rep[:4]), t.as_tensor(rep[1:])]),
        ("x[int array, 1:] (mixed)", (3, 4), lambda x: x[rep, 1:],
         lambda t, x: x[t.as_tensor(rep), 1:]),
        ("x[bool mask]", (2, 3), lambda x: x[mask], lambda t, x: x[t.as_tensor(mask)]),
        ("x[bool tensor mask over rows]", (2, 3),
         lambda x: x[cr.tensor(np.array([False, True]))],
         lambda t, x: x[t.as_tensor(np.array([False, True]))]),
    ]
    return [Sample(label, (anyval(*shape),), fn, tfn) for label, shape, fn, tfn in cases]


def _scatter_samples():
    """scatter_add has no public function of its own: it is the backward of getitem, so it is
    called as the gradient of x[index] with respect to x, as a function of the upstream g."""
    rep = np.array([0, 2, 2, 1, 0])
    cases = [("basic slice", (3, 4), (slice(1, 3), 2)), ("repeated ints", (3, 2), rep),
             ("bool mask", (2, 3), np.array([[True, False, True], [False, True, True]]))]
    out = []
    for label, shape, index in cases:
        x0 = anyval(*shape)
        g0 = anyval(*x0[index].shape)

        def fn(g, x0=x0, index=index):
            x = cr.tensor(x0, requires_grad=True)
            return cr.autograd.grad(x[index], x, grad_outputs=g, create_graph=True)[0]

        def torch_fn(t, g, x0=x0, index=index):
            x = t.tensor(x0, requires_grad=True)
            ti = t.as_tensor(index) if isinstance(index, np.ndarray) else index
            return t.autograd.grad(x[ti], x, grad_outputs=g, create_graph=True)[0]
        out.append(Sample(f"scatter of g: {label}", (g0,), fn, torch_fn))
    return out


# ---- shape movers ----
def _shape_samples():
    return {
        "reshape": [
            Sample("(2,3)->(3,2)", (anyval(2, 3),), lambda x: x.reshape(3, 2),
                   lambda t, x: x.reshape(3, 2)),
            Sample("(2,3)->(-1,)", (anyval(2, 3),), lambda x: x.reshape(-1),
                   lambda t, x: x.reshape(-1)),
            Sample("()->(1,1)", (anyval(),), lambda x: x.reshape(1, 1),
                   lambda t, x: x.reshape(1, 1)),
            Sample("squeeze/unsqueeze", (anyval(2, 1, 3),),
                   lambda x: x.squeeze(1).unsqueeze(0), lambda t, x: x.squeeze(1).unsqueeze(0)),
            Sample("flatten(1)", (anyval(2, 3, 2),), lambda x: x.flatten(1),
                   lambda t, x: x.flatten(1)),
        ],
        "transpose": [
            Sample(".T", (anyval(2, 3),), lambda x: x.T, lambda t, x: x.T),
            Sample("permute(2,0,1)", (anyval(2, 3, 4),), lambda x: x.permute(2, 0, 1),
                   lambda t, x: x.permute(2, 0, 1)),
            Sample("transpose(0,-1)", (anyval(2, 3, 4),), lambda x: x.transpose(0, -1),
                   lambda t, x: x.transpose(0, -1)),
            Sample("swapaxes(-1,-2)", (anyval(2, 3, 4),), lambda x: cr.ops.swapaxes(x, -1, -2),
                   lambda t, x: x.swapaxes(-1, -2)),
        ],
        "expand": [
            Sample("(3,)->(2,3)", (anyval(3),), lambda x: x.expand(2, 3),
                   lambda t, x: x.expand(2, 3)),
            Sample("(2,1)->(2,4)", (anyval(2, 1),), lambda x: x.expand(2, 4),
                   lambda t, x: x.expand(2, 4)),
            Sample("()->(2,3)", (anyval(),), lambda x: x.expand(2, 3),
                   lambda t, x: x.expand(2, 3)),
            Sample("(3,1)->(2,-1,4)", (anyval(3, 1),), lambda x: x.expand(2, -1, 4),
                   lambda t, x: x.expand(2, -1, 4)),
        ],
        "concatenate": [
            Sample("two along 0", (anyval(2, 3), anyval(1, 3)),
                   lambda a, b: cr.concatenate([a, b]), lambda t, a, b: t.cat([a, b])),
            Sample("three along -1", (anyval(2, 1), anyval(2, 3), anyval(2, 2)),
                   lambda a, b, c: cr.cat([a, b, c], axis=-1),
                   lambda t, a, b, c: t.cat([a, b, c], dim=-1)),
            Sample("the same tensor twice", (anyval(2, 2),),
                   lambda a: cr.concatenate([a, a * 2.0], axis=1),
                   lambda t, a: t.cat([a, a * 2.0], dim=1)),
            Sample("stack along 1", (anyval(2, 3), anyval(2, 3)),
                   lambda a, b: cr.stack([a, b], axis=1), lambda t, a, b: t.stack([a, b], 1)),
            Sample("stack of scalars", (anyval(), anyval()),
                   lambda a, b: cr.stack([a, b]), lambda t, a, b: t.stack([a, b])),
        ],
    }


def _where_samples():
    cond = np.array([[True, False, True], [False, True, True]])
    return [
        Sample("same shapes", (anyval(2, 3), anyval(2, 3)),
               lambda a, b: cr.where(cond, a, b), lambda t, a, b: t.where(t.as_tensor(cond), a, b)),
        Sample("broadcast a(3,) b()", (anyval(3), anyval()),
               lambda a, b: cr.where(cond, a, b), lambda t, a, b: t.where(t.as_tensor(cond), a, b)),
        Sample("scalar other, cond from a tensor", (anyval(2, 3),),
               lambda a: cr.where(a > 0, a, 0.0),
               lambda t, a: t.where(a > 0, a, t.zeros((), dtype=a.dtype))),
    ]


def _clip_samples():
    def x():   # values away from the bounds -0.5 and 0.8
        v = anyval(2, 3)
        return np.where(np.abs(v + 0.5) < 0.1, v + 0.3, np.where(np.abs(v - 0.8) < 0.1, v - 0.3, v))
    return [
        Sample("both bounds", (x(),), lambda a: a.clip(-0.5, 0.8), lambda t, a: a.clip(-0.5, 0.8)),
        Sample("min only", (x(),), lambda a: cr.clip(a, min=-0.5), lambda t, a: a.clip(min=-0.5)),
        Sample("max only", (x(),), lambda a: cr.clip(a, max=0.8), lambda t, a: a.clip(max=0.8)),
        Sample("scalar", (np.array(0.3),), lambda a: a.clip(-0.5, 0.8),
               lambda t, a: a.clip(-0.5, 0.8)),
    ]


def _pow_samples():
    base, _ = makers("pow")
    return _binary("pow", lambda a, b: a ** b, lambda t, a, b: a ** b,
                   scalar_b=2.5, scalar_a=1.7) + [
        Sample("x ** 3 (negative base, integer exponent)", (away(2, 3),),
               lambda a: a ** 3, lambda t, a: a ** 3,
               outside_domain="a negative base has a real power when the exponent is an integer"),
        Sample("x ** 0.5", (base(4),), lambda a: a ** 0.5, lambda t, a: a ** 0.5),
        Sample("x ** -1", (base(4),), lambda a: a.pow(-1.0), lambda t, a: a.pow(-1.0)),
        Sample("x ** 0", (anyval(4),), lambda a: a ** 0.0, lambda t, a: a ** 0.0,
               outside_domain="a^0 is 1 for every base, so its derivatives are 0 everywhere"),
        Sample("2 ** x", (anyval(4),), lambda a: 2.0 ** a, lambda t, a: 2.0 ** a),
    ]


def _cast_samples():
    return [
        Sample("clone (same dtype)", (anyval(2, 3),), lambda x: x.clone() * x,
               lambda t, x: x.clone() * x),
        Sample("astype(float64)", (anyval(3),), lambda x: x.astype(cr.float64),
               lambda t, x: x.double()),
        Sample("astype(float64)", (anyval(),), lambda x: x.astype(cr.float64) + 1.0,
               lambda t, x: x.to(t.float64) + 1.0),
    ]


def _to_device_samples():
    """There and back through the check device (NumPy underneath, so the values are exact)."""
    return [
        Sample("to check and back", (anyval(2, 3),),
               lambda x: (x.to("check") * 2.0).to(x.device) * x, lambda t, x: (x * 2.0) * x),
        Sample("scalar", (anyval(),), lambda x: x.to("check").to(x.device) + x,
               lambda t, x: x + x),
    ]


# ---- primitives of ops/conv.py, ops/losses.py, ops/special.py, called through nn.functional ----
def _conv_samples():
    x_img = anyval
    return [
        Sample("conv2d padding=1 with bias", (x_img(1, 2, 4, 4), anyval(2, 2, 3, 3), anyval(2)),
               lambda x, w, b: F.conv2d(x, w, b, padding=1),
               lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, padding=1)),
        Sample("conv2d stride=2 dilation=2", (x_img(2, 1, 6, 6), anyval(2, 1, 2, 2)),
               lambda x, w: F.conv2d(x, w, stride=2, dilation=2),
               lambda t, x, w: t.nn.functional.conv2d(x, w, stride=2, dilation=2)),
        Sample("avg_pool2d 2x2", (x_img(1, 2, 4, 4),), lambda x: F.avg_pool2d(x, 2),
               lambda t, x: t.nn.functional.avg_pool2d(x, 2)),
        Sample("max_pool2d 2x2 stride 1 (distinct values)", (distinct(1, 1, 4, 4),),
               lambda x: F.max_pool2d(x, 2, stride=1),
               lambda t, x: t.nn.functional.max_pool2d(x, 2, stride=1)),
    ]


def _col2im_samples():
    """col2im is im2col's VJP: called as the gradient of a convolution with respect to its
    input, as a function of the upstream g."""
    out = []
    for label, shape, kwargs in [("padding=1", (1, 2, 4, 4), {"padding": 1}),
                                 ("stride=2", (1, 1, 5, 5), {"stride": 2})]:
        x0, w0 = anyval(*shape), anyval(2, shape[1], 3, 3)
        g0 = anyval(*F.conv2d(cr.tensor(x0), cr.tensor(w0), **kwargs).shape)

        def fn(g, x0=x0, w0=w0, kwargs=kwargs):
            x = cr.tensor(x0, requires_grad=True)
            out = F.conv2d(x, cr.tensor(w0), **kwargs)
            return cr.autograd.grad(out, x, grad_outputs=g, create_graph=True)[0]

        def torch_fn(t, g, x0=x0, w0=w0, kwargs=kwargs):
            x = t.tensor(x0, requires_grad=True)
            out = t.nn.functional.conv2d(x, t.tensor(w0), **kwargs)
            return t.autograd.grad(out, x, grad_outputs=g, create_graph=True)[0]
        out.append(Sample(f"conv2d input-gradient, {label}", (g0,), fn, torch_fn))
    return out


def _bce_samples():
    def probs(*shape):
        return _rng.uniform(0.15, 0.85, shape)
    return [
        Sample("mean", (probs(2, 3), _rng.uniform(0, 1, (2, 3))),
               lambda p, y: F.binary_cross_entropy(p, y),
               lambda t, p, y: t.nn.functional.binary_cross_entropy(p, y)),
        Sample("none, hard targets", (probs(4),),
               lambda p: F.binary_cross_entropy(p, cr.tensor([0.0, 1.0, 1.0, 0.0],
                                                             dtype=cr.float64), reduction="none"),
               lambda t, p: t.nn.functional.binary_cross_entropy(
                   p, t.tensor([0.0, 1.0, 1.0, 0.0], dtype=t.float64), reduction="none")),
    ]


def _erf_samples():
    return [Sample(f"gelu (exact, through erf) x{s}", (anyval(*s),), F.gelu,
                   lambda t, x: t.nn.functional.gelu(x)) for s in [(), (2, 3)]]


# ---- fused primitives (ops/fused.py), called through nn.functional ----
def _linear_samples():
    return [Sample(f"x{sx} W(4,3) bias={bias}", (anyval(*sx), anyval(4, 3)) +
                   ((anyval(4),) if bias else ()),
                   lambda *a: F.linear(*a), lambda t, *a: t.nn.functional.linear(*a))
            for sx, bias in [((2, 3), True), ((2, 3), False), ((2, 2, 3), True), ((3,), True)]]


LABELS = np.array([0, 3, 3])


def _xent_samples():
    def probs():
        p = _rng.uniform(0.1, 1.0, (3, 4))
        return p / p.sum(1, keepdims=True)
    labels = [Sample(f"labels, reduction={r}", (anyval(3, 4),),
                     lambda x, r=r: F.cross_entropy(x, cr.tensor(LABELS), reduction=r),
                     lambda t, x, r=r: t.nn.functional.cross_entropy(
                         x, t.as_tensor(LABELS), reduction=r))
              for r in ("mean", "sum", "none")]
    targets = [Sample(f"probability targets, reduction={r}", (anyval(3, 4), probs()),
                      lambda x, y, r=r: F.cross_entropy(x, y, reduction=r),
                      lambda t, x, y, r=r: t.nn.functional.cross_entropy(x, y, reduction=r))
               for r in ("mean", "none")]
    return labels, targets


def _xent_grad_samples():
    """The fused loss's gradient is itself a primitive; reached as the gradient of the loss
    with respect to the scores, as a function of the scores (grad of grad)."""
    def torch_grad(t, x, r):
        loss = t.nn.functional.cross_entropy(x, t.as_tensor(LABELS), reduction=r)
        return t.autograd.grad(loss.sum(), x, create_graph=True)[0]
    return [Sample(f"d loss/d scores, reduction={r}", (anyval(3, 4),),
                   lambda x, r=r: cr.grad(
                       lambda z: F.cross_entropy(z, cr.tensor(LABELS), reduction=r).sum())(x),
                   lambda t, x, r=r: torch_grad(t, x, r)) for r in ("mean", "none")]


def _pool_samples():
    """Non-overlapping max-pooling (the fused primitive's case), odd sizes floor as in torch."""
    (make,) = makers("max_pool2d")
    return [Sample(f"max_pool2d {k}x{k} on {s}", (make(*s),),
                   lambda x, k=k: F.max_pool2d(x, k),
                   lambda t, x, k=k: t.nn.functional.max_pool2d(x, k))
            for k, s in [(2, (2, 3, 4, 4)), (2, (1, 2, 5, 7)), (3, (2, 6, 6))]]


def _pool_scatter_samples():
    """max_pool2d's VJP is itself a primitive; reached as the gradient of the pool."""
    x0 = makers("max_pool2d")[0](1, 2, 4, 6)   # the pool's input

    def torch_fn(t, g):
        x = t.tensor(x0, requires_grad=True)
        return t.autograd.grad(t.nn.functional.max_pool2d(x, 2), x, g, create_graph=True)[0]
    return [Sample("d pool/dx as a function of g", (anyval(1, 2, 2, 3),),
                   lambda g: _pool_grad(x0, g), torch_fn)]


def _pool_grad(x0, g):
    x = cr.tensor(x0, requires_grad=True)
    return cr.autograd.grad(F.max_pool2d(x, 2), x, grad_outputs=g, create_graph=True)[0]


def _fused_specs():
    """Only for the fused primitives that are registered (ops/fused.py may come and go)."""
    labels, targets = _xent_samples()
    table = {"linear": _linear_samples, "softmax_cross_entropy": lambda: labels,
             "softmax_cross_entropy_probs": lambda: targets,
             "softmax_cross_entropy_grad": _xent_grad_samples,
             "max_pool2d": _pool_samples, "max_pool2d_scatter": _pool_scatter_samples}
    return {name: Spec(make()) for name, make in table.items() if name in cr.ops.REGISTRY}


def build_specs():
    """name -> Spec, for every primitive (built once, deterministic)."""
    specs = {
        "add": Spec(_binary("add", lambda a, b: a + b, lambda t, a, b: a + b)),
        "sub": Spec(_binary("sub", lambda a, b: a - b, lambda t, a, b: a - b)),
        "mul": Spec(_binary("mul", lambda a, b: a * b, lambda t, a, b: a * b)),
        "div": Spec(_binary("div", lambda a, b: a / b, lambda t, a, b: a / b)),
        "neg": Spec(_unary("neg", lambda x: -x, lambda t, x: -x)),
        "pow": Spec(_pow_samples()),
        "maximum": Spec(_pairwise("maximum", cr.maximum, lambda t, a, b: t.maximum(a, b))),
        "minimum": Spec(_pairwise("minimum", cr.minimum, lambda t, a, b: t.minimum(a, b))),
        "exp": Spec(_unary("exp", cr.exp, lambda t, x: x.exp())),
        "log": Spec(_unary("log", cr.log, lambda t, x: x.log())),
        "sqrt": Spec(_unary("sqrt", cr.sqrt, lambda t, x: x.sqrt())),
        "sin": Spec(_unary("sin", cr.sin, lambda t, x: x.sin())),
        "cos": Spec(_unary("cos", cr.cos, lambda t, x: x.cos())),
        "tanh": Spec(_unary("tanh", cr.tanh, lambda t, x: x.tanh())),
        "abs": Spec(_unary("abs", cr.abs, lambda t, x: x.abs())),
        "sigmoid": Spec(_unary("sigmoid", cr.sigmoid, lambda t, x: x.sigmoid())),
        "relu": Spec(_unary("relu", cr.relu, lambda t, x: x.relu())),
        "clip": Spec(_clip_samples()),
        "where": Spec(_where_samples()),
        "cast": Spec(_cast_samples()),
        "to_device": Spec(_to_device_samples()),
        "matmul": Spec(_matmul()),
        "sum": Spec(_reduction("sum", "sum")),
        "max": Spec(_reduction("max", "amax")),
        "min": Spec(_reduction("min", "amin")),
        "getitem": Spec(_index_samples()),
        "scatter_add": Spec(_scatter_samples()),
        "im2col": Spec(_conv_samples()),
        "col2im": Spec(_col2im_samples()),
        "conv2d_gemm": Spec(_conv_samples()[:2]),   # conv2d's matrix product (groups=1)
        "binary_cross_entropy": Spec(_bce_samples()),
        "erf": Spec(_erf_samples()),
    }
    specs.update({name: Spec(samples) for name, samples in _shape_samples().items()})
    specs.update(_fused_specs())
    return specs


SPECS = build_specs()


def _split_sum(t, x, sizes):
    """Weight the pieces differently so a wrong piece boundary shows in the gradient."""
    pieces = t.split(x, sizes, dim=1) if t is not cr else cr.split(x, sizes, axis=1)
    return sum((p * (k + 1.0)).sum() for k, p in enumerate(pieces))


# Composites (built from the primitives above): checked the same way, by gradcheck and torch.
COMPOSITES = {
    "mean": [Sample(f"axis={a} keepdims={k}", (anyval(2, 3),),
                    lambda x, a=a, k=k: x.mean(a, keepdims=k),
                    lambda t, x, a=a, k=k: x.mean() if a is None else x.mean(a, keepdim=k))
             for a, k in [(None, False), (1, True), ((0, 1), False)]],
    "var": [Sample("all", (anyval(2, 3),), lambda x: x.var(), lambda t, x: x.var()),
            Sample("axis=0 keepdims", (anyval(3, 2),), lambda x: x.var(0, keepdims=True),
                   lambda t, x: x.var(0, keepdim=True)),
            Sample("axis=1 correction=0", (anyval(2, 4),), lambda x: x.var(1, correction=0),
                   lambda t, x: x.var(1, correction=0))],
    "std": [Sample("axis=1", (anyval(2, 4),), lambda x: x.std(1), lambda t, x: x.std(1)),
            Sample("all", (anyval(5),), lambda x: cr.std(x), lambda t, x: x.std())],
    "logsumexp": [Sample("all", (anyval(2, 3),), lambda x: cr.logsumexp(x),
                         lambda t, x: x.logsumexp((0, 1))),
                  Sample("axis=-1 keepdims", (anyval(2, 3),),
                         lambda x: x.logsumexp(-1, keepdims=True),
                         lambda t, x: x.logsumexp(-1, keepdim=True))],
    "softmax": [Sample("axis=-1", (anyval(2, 4),), lambda x: cr.softmax(x),
                       lambda t, x: x.softmax(-1)),
                Sample("axis=0", (anyval(3, 2),), lambda x: x.softmax(0),
                       lambda t, x: x.softmax(0))],
    "log_softmax": [Sample("axis=-1", (anyval(2, 4),), lambda x: cr.log_softmax(x),
                           lambda t, x: x.log_softmax(-1)),
                    Sample("axis=0", (anyval(3, 2),), lambda x: x.log_softmax(0),
                           lambda t, x: x.log_softmax(0))],
    "squeeze/unsqueeze": [Sample("squeeze()", (anyval(1, 3, 1),), lambda x: cr.squeeze(x),
                                 lambda t, x: x.squeeze()),
                          Sample("unsqueeze(-1)", (anyval(2, 3),),
                                 lambda x: cr.unsqueeze(x, -1), lambda t, x: x.unsqueeze(-1))],
    "flatten": [Sample("all", (anyval(2, 3, 2),), lambda x: cr.flatten(x),
                       lambda t, x: x.flatten()),
                Sample("dims 0..1", (anyval(2, 3, 2),), lambda x: x.flatten(0, 1),
                       lambda t, x: x.flatten(0, 1))],
    "stack": [Sample("axis=-1", (anyval(2, 3), anyval(2, 3)),
                     lambda a, b: cr.stack([a, b], axis=-1), lambda t, a, b: t.stack([a, b], -1))],
    "split": [Sample("size 2", (anyval(2, 5),), lambda x: _split_sum(cr, x, 2),
                     lambda t, x: _split_sum(t, x, 2)),
              Sample("sections", (anyval(2, 5),), lambda x: _split_sum(cr, x, [1, 3, 1]),
                     lambda t, x: _split_sum(t, x, [1, 3, 1]))],
    "swapaxes": [Sample("0,2", (anyval(2, 3, 4),), lambda x: x.swapaxes(0, 2),
                        lambda t, x: x.swapaxes(0, 2))],
    "clip": _clip_samples()[:1] + [
        Sample("tensor bounds (gradients reach them)",
               (np.array([[-2.0, 0.1, 2.0], [0.5, -0.6, 1.3]]), np.array([-1.0, -0.3, 0.2]),
                np.array([[0.8], [1.1]])),
               lambda x, lo, hi: x.clip(lo, hi), lambda t, x, lo, hi: x.clamp(lo, hi)),
        Sample("tensor lower bound only", (anyval(2, 3), np.array(-0.25)),
               lambda x, lo: cr.clip(x, lo), lambda t, x, lo: t.clamp(x, min=lo))],
    "where": _where_samples()[:1],
    "maximum/minimum": [Sample("relu as maximum(x, 0)", (away(2, 3),),
                               lambda x: cr.maximum(x, 0.0) + cr.minimum(x, 0.0) * 2.0,
                               lambda t, x: t.maximum(x, t.zeros(()).double())
                               + t.minimum(x, t.zeros(()).double()) * 2.0)],
}


def all_composites():
    return [(name, s) for name, samples in COMPOSITES.items() for s in samples]


def all_samples():
    """(primitive name, sample) for every sample, in a stable order."""
    return [(name, s) for name, spec in SPECS.items() for s in spec.samples]


def nodes_of(out, name):
    """The nodes of primitive `name` in the graph that made the tensor `out`."""
    found, seen, stack = [], set(), [out._node]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node.prim.name == name:
            found.append(node)
        stack.extend(t._node for t in node.inputs)
    return found


def sample_id(item):
    name, sample = item
    return f"{name}:{sample.label}"
