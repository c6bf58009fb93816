"""Custom differentiable functions: `chainrule.autograd.Function`, with PyTorch's interface.

A subclass writes `forward(ctx, *args)` and `backward(ctx, *grad_outputs)` as static methods;
`Fn.apply(*args)` runs the forward under no_grad and records one graph node whose type is a
Primitive made for the class (not registered in REGISTRY, the table of built-in primitives):
its name is the class's name, its formula the class's `formula` attribute if it has one, and
its rule for each tensor input calls the user's backward once per backward pass, with Tensors
(PyTorch semantics), and hands the engine arrays in a first-order pass and Tensors under
create_graph (so a backward written with Tensor operations is itself differentiable). So the
engine, `explain`, anomaly mode and `gradcheck` see a custom function as they see any
primitive.

>>> import chainrule as cr
>>> class Cube(cr.autograd.Function):
...     formula = "x³"
...     derivs = ("3x²",)
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x ** 3
...     @staticmethod
...     def backward(ctx, g):
...         (x,) = ctx.saved_tensors
...         return g * 3 * x ** 2
>>> x = cr.tensor([1.0, 2.0], requires_grad=True)
>>> Cube.apply(x).sum().backward()
>>> x.grad.tolist()
[3.0, 12.0]
>>> cr.gradcheck(Cube.apply, [cr.tensor([0.5, -1.5])])
True

Differences from PyTorch (docs/conventions.md): several differentiable outputs are recorded
as one node whose output is their concatenation, each returned tensor a recorded slice of it
(so `explain` shows the slices); `grad_fn` is that node, not the ctx; keyword arguments are
passed to forward and are never differentiated. As in PyTorch, what backward reads is checked
for in-place changes by `ctx.saved_tensors`.
"""
import inspect

from .. import autograd, backend
from ..autograd import FREEZE_EVERY, Node, graph_gc
from ..errors import GraphError
from ..grad_mode import grad_enabled, no_grad
from ..tensor import Tensor
from . import registry
from .registry import Primitive

np = backend.np


def _raw(t):
    """The array of a Tensor."""
    return t._data


class FunctionCtx:
    """What `forward` leaves for `backward` (PyTorch's `ctx`): `save_for_backward(*tensors)`
    and `saved_tensors`, `needs_input_grad` (one bool per forward argument),
    `mark_non_differentiable(*outputs)`, `set_materialize_grads(flag)`, and any attribute
    you assign (`ctx.k = 3`)."""

    def __init__(self):
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._saved = ()
        self._saved_versions = ()
        self._non_differentiable = set()
        self._fn_name = "Function"

    def save_for_backward(self, *tensors):
        """Keep `tensors` (inputs, outputs or None) for backward; backward raises if one of
        them is modified in place in between."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save tensors (or None), but "
                                f"argument {i} is of type {type(t).__name__}; keep other "
                                "values as attributes of ctx (ctx.k = k)")
        self._saved = tensors
        self._saved_versions = tuple(None if t is None else t._version for t in tensors)

    @property
    def saved_tensors(self):
        for i, (t, v) in enumerate(zip(self._saved, self._saved_versions)):
            if t is not None and t._version != v:
                raise GraphError(
                    "one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [{t.dtype} {tuple(t.shape)}], which is saved "
                    f"tensor {i} of {self._fn_name}, is at version {t._version}; expected "
                    f"version {v} instead. Use an out-of-place operation, or .clone() it "
                    "before changing it.")
        return tuple(self._saved)

    # PyTorch also spells it this way
    @property
    def saved_variables(self):
        return self.saved_tensors

    def mark_non_differentiable(self, *outputs):
        """These outputs get no gradient: they do not require grad, and backward receives
        zeros for them."""
        self._non_differentiable.update(id(t) for t in outputs)

    def set_materialize_grads(self, value):
        """With False, backward receives None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)


class _Spec:
    """How one application's arguments and outputs are laid out: where the tensor arguments
    sit among the others, and where each differentiable output sits in the node's output."""
    __slots__ = ("cls", "args", "kwargs", "positions", "layout", "nondiff", "single", "inputs")

    def rebuild(self, tensors):
        args = list(self.args)
        for p, t in zip(self.positions, tensors):
            args[p] = t
        return args


def _run_forward(cls, ctx, args, kwargs):
    ctx._fn_name = cls.__name__
    with no_grad():
        if _has_setup_context(cls):
            output = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, tuple(args), output)
        else:
            output = cls.forward(ctx, *args, **kwargs)
    return output


def _has_setup_context(cls):
    return getattr(cls.setup_context, "__func__", cls.setup_context) is not \
        Function.__dict__["setup_context"].__func__


def _pack(arrays, dtype):
    """One flat array of several outputs (a single one is kept as it is)."""
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate([a.astype(dtype, copy=False).reshape(-1) for a in arrays])


def _unpack(g, layout, cast=True):
    """The gradient of each differentiable output from the node's gradient (arrays or
    Tensors alike), each in its output's dtype (with `cast`)."""
    if len(layout) == 1:
        return [g]
    parts = []
    for start, stop, shape, dtype in layout:
        part = g[start:stop].reshape(shape)
        if cast and part.dtype != dtype:
            part = part.astype(dtype)
        parts.append(part)
    return parts


class Function:
    """Base class of differentiable functions with a hand-written backward (PyTorch's
    `torch.autograd.Function`); see the module docstring for an example.

    Class attributes read by `cr.explain` (all optional): `formula` (the forward in the input
    names, e.g. "x³"), `derivs` (one local derivative per tensor input, e.g. ("3x²",)),
    `inputs` (the names; by default forward's parameter names), `elementwise`.
    """
    formula = None
    derivs = None
    inputs = None
    elementwise = False

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args) as a "
                                  "@staticmethod")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads) as a "
                                  "@staticmethod to be differentiated")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Override (with forward(*args) taking no ctx) to fill ctx after forward, as in
        PyTorch 2."""
        raise NotImplementedError

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__}: a Function is not called on an instance; "
                           f"use {type(self).__name__}.apply(...) (forward and backward are "
                           "static methods)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward on `args` and record the result for backward."""
        return _apply(cls, args, kwargs)


def once_differentiable(backward):
    """Decorator for a backward that is not itself differentiable (PyTorch's): it runs
    under no_grad, so a second derivative through it is zero rather than wrong."""
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)
    wrapper.__name__ = getattr(backward, "__name__", "backward")
    wrapper.__doc__ = getattr(backward, "__doc__", None)
    return wrapper


# ---------------------------------------------------------------- recording

def _apply(cls, args, kwargs):
    positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
    inputs = tuple(args[i] for i in positions)
    record = grad_enabled() and any(t.requires_grad for t in inputs)
    ctx = FunctionCtx()
    ctx.needs_input_grad = tuple(record and isinstance(a, Tensor) and a.requires_grad
                                 for a in args)
    output = _run_forward(cls, ctx, args, kwargs)
    if not record:
        return output
    single = not isinstance(output, tuple)
    outs = [output] if single else list(output)
    # an output that is an input (or returned twice) is given as a new tensor sharing its
    # array, so that recording it never rewires the input's own history
    input_ids = {id(t) for t in inputs}
    seen = set(input_ids)
    for k, o in enumerate(outs):
        if isinstance(o, Tensor):
            if id(o) in seen:
                outs[k] = o.detach()
            seen.add(id(outs[k]))
    diff = [k for k, o in enumerate(outs)
            if isinstance(o, Tensor) and backend.is_float(o.dtype)
            and id(o) not in ctx._non_differentiable]
    if not diff:
        return output if single else tuple(outs)
    dtype = np.result_type(*[outs[k].dtype for k in diff])
    layout, start = [], 0
    for k in diff:
        n = outs[k].numel()
        layout.append((start, start + n, tuple(outs[k].shape), outs[k].dtype))
        start += n
    spec = _Spec()
    spec.cls, spec.args, spec.kwargs, spec.positions = cls, tuple(args), kwargs, positions
    spec.layout, spec.single = tuple(layout), single
    spec.nondiff = tuple((k, tuple(o.shape), o.dtype) if isinstance(o, Tensor) else (k, None, None)
                         for k, o in enumerate(outs) if k not in diff)
    spec.inputs = inputs
    prim = _primitive(cls, positions)
    params = {"ctx": ctx, "spec": spec}
    packed = _pack([_raw(outs[k]) for k in diff], dtype)
    if len(diff) == 1:
        result = outs[diff[0]]
    else:
        result = Tensor._wrap(packed)
    result.requires_grad = True
    node = result._node = Node(prim, inputs, params, _raw(result))
    if not next(registry._recorded) % FREEZE_EVERY:
        graph_gc.recorded(node)
    for hook in registry.node_hooks:
        hook(node)
    for hook in registry.op_hooks:
        hook("apply", prim, inputs, params, result)
    if len(diff) > 1:
        for (a, b, shape, dt), k in zip(layout, diff):
            part = result[a:b].reshape(shape)
            outs[k] = part if part.dtype == dt else part.astype(dt)
    # saved outputs are the recorded tensors (so a second derivative flows through them)
    given = [output] if single else list(output)
    final = {id(given[k]): outs[k] for k in diff if id(given[k]) not in input_ids}
    ctx._saved = tuple(final.get(id(t), t) if t is not None else None for t in ctx._saved)
    return outs[0] if single else tuple(outs)


_PRIMS_ATTR = "_chainrule_primitives"


def _primitive(cls, positions):
    """The Primitive describing `cls` applied with tensors at `positions` (cached)."""
    prims = cls.__dict__.get(_PRIMS_ATTR)
    if prims is None:
        prims = {}
        setattr(cls, _PRIMS_ATTR, prims)
    prim = prims.get(positions)
    if prim is None:
        prim = prims[positions] = _make_primitive(cls, positions)
    return prim


def _input_names(cls, positions):
    if cls.inputs is not None:
        return tuple(cls.inputs)
    try:
        params = list(inspect.signature(cls.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    if not _has_setup_context(cls):
        params = params[1:]       # ctx
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out = []
    for i, p in enumerate(positions):
        out.append(names[p] if p < len(names) else f"x{i + 1}")
    return tuple(out)


def _make_primitive(cls, positions):
    name = cls.__name__
    inputs = _input_names(cls, positions)
    formula = cls.formula or f"{name}({', '.join(inputs)})"
    derivs = cls.derivs
    if derivs is None:
        derivs = tuple(f"∂{name}/∂{x}" for x in inputs)
    elif isinstance(derivs, str):
        derivs = (derivs,) * len(inputs)
    derivs = tuple(derivs) + tuple(f"∂{name}/∂{x}" for x in inputs[len(derivs):])
    rules = [_rule(i) for i in range(len(positions))]
    return Primitive(name, _forward, rules, formula, derivs[:len(inputs)], inputs=inputs,
                     # what backward reads is checked by ctx.saved_tensors, not by the engine
                     saves=(), elementwise=bool(cls.elementwise),
                     register=False,
                     hint=f"the forward of the custom Function {name} failed on these inputs")


def _forward(*arrays, ctx=None, spec=None):
    """The node's output from input arrays: forward run again on Tensors around them (how
    `explain` checks a step and `cr.compile` replays it)."""
    args = spec.rebuild([Tensor._wrap(a) for a in arrays])
    output = _run_forward(spec.cls, FunctionCtx(), args, spec.kwargs)
    outs = [output] if spec.single else list(output)
    diff = [k for k in range(len(outs)) if k not in {n[0] for n in spec.nondiff}]
    dtype = np.result_type(*[outs[k].dtype for k in diff])
    return _pack([_raw(outs[k]) for k in diff], dtype)


def _rule(i):
    def rule(g, y, *xs, ctx, spec):
        return _input_grads(g, xs, ctx, spec)[i]
    rule.__name__ = f"function_rule_{i}"
    return rule


def _input_grads(g, xs, ctx, spec):
    """Every tensor input's gradient for output gradient `g`, from one call of backward
    (remembered for the other inputs of the same pass)."""
    cached = getattr(ctx, "_chainrule_cache", None)
    if cached is not None and cached[0] is g and all(a is b for a, b in zip(cached[1], xs)):
        return cached[2]
    tensors = isinstance(g, Tensor)
    if tensors:
        own = all(a is b for a, b in zip(xs, spec.inputs))
    else:
        own = all(a is _raw(b) for a, b in zip(xs, spec.inputs))
    if not own:
        # called on other values (explain's check of a step, a compiled replay): the forward
        # is run again on them, for a context that matches them
        ctx = FunctionCtx()
        args = spec.rebuild([x if isinstance(x, Tensor) else Tensor._wrap(x) for x in xs])
        _run_forward(spec.cls, ctx, args, spec.kwargs)
    grads = _call_backward(g, ctx, spec, tensors, cast=own)
    ctx._chainrule_cache = (g, xs, grads) if own else None
    return grads


def _call_backward(g, ctx, spec, tensors, cast=True):
    name = spec.cls.__name__
    parts = _unpack(g, spec.layout, cast)
    if not tensors:
        parts = [Tensor._wrap(p) for p in parts]
    n_out = len(spec.layout) + len(spec.nondiff)
    grads_out = [None] * n_out
    diff = [k for k in range(n_out) if k not in {n[0] for n in spec.nondiff}]
    for k, p in zip(diff, parts):
        grads_out[k] = p
    xp = backend.xp_of(_raw(g) if isinstance(g, Tensor) else g)
    for k, shape, dtype in spec.nondiff:
        if shape is not None and ctx.materialize_grads:
            grads_out[k] = Tensor._wrap(xp.zeros(shape, dtype=dtype))
    result = spec.cls.backward(ctx, *grads_out)
    result = result if isinstance(result, tuple) else (result,)
    n_args = len(spec.args)
    if len(result) != n_args and not (len(result) > n_args and
                                      all(r is None for r in result[n_args:])):
        raise GraphError(f"function {name}Backward returned an incorrect number of gradients "
                         f"(expected {n_args}, got {len(result)}): backward returns one "
                         "gradient per argument of forward (None for those without one)")
    grads = []
    tensor_positions = set(spec.positions)
    for p, r in enumerate(result[:n_args]):
        if p not in tensor_positions:
            if r is not None:
                raise GraphError(
                    f"function {name}Backward returned a gradient different than None at "
                    f"position {p + 1}, but the corresponding forward input was not a tensor")
            continue
        x = spec.args[p]
        if r is None:
            grads.append(None)
            continue
        if not isinstance(r, Tensor):
            r = Tensor._wrap(backend.to_array(r))
        if r.shape != x.shape and not _expandable(x.shape, r.shape):
            raise GraphError(
                f"Function {name}Backward returned an invalid gradient at index {len(grads)} - "
                f"got {list(r.shape)} but expected shape compatible with {list(x.shape)}")
        grads.append(r if tensors else _raw(r))
    return grads


def _expandable(shape, grad_shape):
    """Whether a gradient of `grad_shape` sums back to `shape` (it broadcasts from it)."""
    if len(grad_shape) < len(shape):
        return False
    for n, m in zip(reversed(shape), reversed(grad_shape)):
        if n != m and n != 1:
            return False
    return True


def install():
    """Make the class reachable as `chainrule.autograd.Function` (bound from the ops layer,
    as the method table binds Tensor's methods: the engine never imports ops)."""
    autograd.Function = Function
    autograd.FunctionCtx = FunctionCtx
    autograd.once_differentiable = once_differentiable
