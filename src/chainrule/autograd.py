"""The graph and the reverse-mode engine.

Every differentiable operation on tensors that require grad records a `Node`: the primitive,
its input tensors (in order), its parameters and its output array. `backward` walks the nodes
reachable from the outputs in reverse topological order (computed iteratively, so a chain of
a million nodes is fine), calls each primitive's VJP rules and sums what arrives at each node
before passing it on, so a value used along several paths gets the sum over its paths.
Gradients reach `.grad` only on leaves (tensors made by the user) and on tensors that called
`retain_grad()`.
"""
import gc
import weakref

from . import backend
from .errors import GraphError
from .tensor import Tensor

_wrap = Tensor._wrap


class _GradMode:
    __slots__ = ("enabled",)

    def __init__(self):
        self.enabled = True


grad_mode = _GradMode()


def is_grad_enabled():
    """Whether operations record the graph now (False inside `no_grad`).

    >>> import chainrule as cr
    >>> with cr.no_grad():
    ...     inside = cr.is_grad_enabled()
    >>> cr.is_grad_enabled(), inside
    (True, False)
    """
    return grad_mode.enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off.

    >>> import chainrule as cr
    >>> w = cr.tensor(1.0, requires_grad=True)
    >>> with cr.set_grad_enabled(False):
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.prev = []

    def __enter__(self):
        self.prev.append(grad_mode.enabled)
        grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        grad_mode.enabled = self.prev.pop()
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class no_grad(set_grad_enabled):
    """Record no graph inside the block: for evaluation and parameter updates.

    >>> import chainrule as cr
    >>> w = cr.tensor(1.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __new__(cls, fn=None):
        if fn is not None:          # bare @cr.no_grad, as PyTorch allows
            return set_grad_enabled(False)(fn)
        return super().__new__(cls)

    def __init__(self, fn=None):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record the graph inside the block, even within `no_grad`.

    >>> import chainrule as cr
    >>> w = cr.tensor(1.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     with cr.enable_grad():
    ...         y = w * 2
    >>> y.requires_grad
    True
    """

    def __new__(cls, fn=None):
        if fn is not None:          # bare @cr.enable_grad
            return set_grad_enabled(True)(fn)
        return super().__new__(cls)

    def __init__(self, fn=None):
        super().__init__(True)


# Set by `explain` (and anomaly mode) to watch the backward pass; None costs nothing.
_observers = []


# ---- the graph and Python's cyclic garbage collector ----
# A recorded graph is acyclic and is freed by reference counting, yet while it grows the
# cyclic collector rescans every live node again and again (its full collections run each
# time the heap grows by 25%): measured, two thirds of the forward time of a 1e6-node chain
# (bench/NOTES.md). So every FREEZE_EVERY recorded nodes the objects alive so far are moved
# out of the collector's scans (gc.freeze), and the next backward gives them back
# (gc.unfreeze). Nothing is freed later than it would be: reference counting frees as always;
# only cyclic garbage that already existed waits for that backward (or for FREEZE_LIMIT more
# nodes, whichever comes first). If the program froze objects itself, chainrule leaves the
# collector alone.
FREEZE_EVERY = 4096
FREEZE_LIMIT = 1 << 22


class _GraphGC:
    __slots__ = ("frozen", "since")

    def __init__(self):
        self.frozen = False   # True while objects in the permanent generation are ours
        self.since = 0        # nodes recorded since we first froze

    def recorded(self):
        """Called by `apply` every FREEZE_EVERY recorded nodes."""
        if not gc.isenabled():
            return
        if not self.frozen:
            if gc.get_freeze_count():
                return                      # the program's own freeze: do not touch it
            self.frozen, self.since = True, 0
        self.since += FREEZE_EVERY
        if self.since > FREEZE_LIMIT:       # a graph never walked back: stop deferring
            self.release()
            return
        gc.freeze()

    def release(self):
        if self.frozen:
            self.frozen = False
            gc.unfreeze()


graph_gc = _GraphGC()


class Node:
    """One recorded primitive application: what its VJP needs, nothing more."""

    __slots__ = ("prim", "inputs", "params", "out", "versions", "retained", "trace", "__weakref__")

    def __init__(self, prim, inputs, params, out):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.out = out
        if len(inputs) == 2:
            self.versions = (inputs[0]._version, inputs[1]._version)
        elif len(inputs) == 1:
            self.versions = (inputs[0]._version,)
        else:
            self.versions = tuple([t._version for t in inputs])
        self.retained = None
        self.trace = None

    @property
    def name(self):
        return self.prim.name

    def vjp(self, g, create_graph):
        """Gradients for each input (None where an input needs none), shaped like the inputs."""
        prim = self.prim
        if prim.fast is not None and not create_graph:
            return self._vjp_arrays(g.data, prim.fast)
        inputs = self.inputs
        params = self.params
        out = _wrap(self.out)
        if create_graph:
            out.requires_grad = True
            out._node = self
        grads = []
        for i, t in enumerate(inputs):
            if not t.requires_grad:
                grads.append(None)
                continue
            rule = prim.vjps(i) if prim.variadic else prim.vjps[i]
            if rule is None:
                grads.append(None)
                continue
            gi = rule(g, out, *inputs, **params)
            data = gi.data
            if data.shape != t.data.shape:
                gi = _ops().sum_to_shape(gi, t.data.shape)
                data = gi.data
            if data.dtype != t.data.dtype:
                gi = gi.astype(t.data.dtype)
            grads.append(gi)
        return grads

    def _vjp_arrays(self, g, rules):
        """`vjp` through the primitive's array rules: first order only, no Tensor per step."""
        inputs, y, params = self.inputs, self.out, self.params
        arrays = [t.data for t in inputs]
        grads = [None] * len(arrays)
        i = 0
        for t, rule in zip(inputs, rules):
            if rule is not None and t.requires_grad:
                gi = rule(g, y, *arrays, **params)
                x = arrays[i]
                if gi.shape != x.shape:
                    gi = sum_to(gi, x.shape)
                if gi.dtype != x.dtype:
                    gi = gi.astype(x.dtype)
                grads[i] = _wrap(gi)
            i += 1
        return grads

    def release(self):
        self.inputs = None
        self.out = None

    def check_versions(self):
        for t, v in zip(self.inputs, self.versions):
            if t._version != v:
                raise GraphError(
                    f"{self.prim.name}: an input of shape {t.shape} was modified in place after "
                    f"the forward pass saved it (version {v} -> {t._version}); its gradient "
                    "would be wrong. Use an out-of-place operation (x = x + 1, not x += 1), "
                    "or .clone() the tensor before changing it.")

    def __repr__(self):
        return f"<Node {self.prim.name}>"


def sum_to(a, shape):
    """Sum the broadcast array `a` back to `shape` (the array twin of ops.sum_to_shape)."""
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and a.shape[i + lead] != 1)
    if axes:
        a = backend.np.add.reduce(a, axis=axes, keepdims=True)
    return a.reshape(shape)


def _ops():
    from . import ops
    return ops


def _freed_error(node):
    return GraphError(
        f"Trying to backward through the graph a second time (op '{node.prim.name}'): its saved "
        "values were freed after the first backward. Pass retain_graph=True to the first "
        "backward if you need to walk it again.")


def toposort(roots):
    """Nodes reachable from `roots`, every node before the nodes that feed it (iterative DFS)."""
    order, seen = [], set()
    add, push, pop = seen.add, None, None
    for root in roots:
        if root in seen:
            continue
        add(root)
        stack = [(root, 0)]
        push, pop = stack.append, stack.pop
        while stack:
            node, i = pop()
            inputs = node.inputs
            if inputs is None:
                raise _freed_error(node)
            n = len(inputs)
            while i < n:
                t = inputs[i]
                i += 1
                child = t._node
                if child is not None and t.requires_grad and child not in seen:
                    add(child)
                    push((node, i))
                    push((child, 0))
                    break
            else:
                order.append(node)
    order.reverse()
    return order


def _accumulate(store, key, g):
    prev = store.get(key)
    store[key] = g if prev is None else prev + g


def _seed_gradients(outputs, grad_outputs):
    seeds = []
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"backward: outputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise GraphError(
                f"backward: output {i} (shape {t.shape}) does not require grad, so there is no "
                "graph to walk. Set requires_grad=True on the inputs you want gradients for, "
                "and do not compute the output under no_grad().")
        g = grad_outputs[i] if grad_outputs is not None else None
        if g is None:
            if t.data.size != 1:
                raise GraphError(
                    f"backward: output {i} has shape {t.shape}, not a scalar; pass gradient= "
                    f"(an array of shape {t.shape}, e.g. ones) or reduce it first, e.g. "
                    "loss.sum().backward() or loss.mean().backward().")
            g = Tensor._wrap(backend.np.ones(t.shape, dtype=t.dtype) if t.data.ndim else
                             backend.np.array(1, dtype=t.dtype))   # 0.3 µs, not np.ones' 1.1
        elif not isinstance(g, Tensor):  # copied: a .grad must never alias the caller's array
            g = Tensor._wrap(backend.np.array(backend.to_array(g, t.dtype)))
        elif not g.requires_grad:
            g = Tensor._wrap(g.data.copy())
        if g.shape != t.shape:
            from .errors import ShapeError
            raise ShapeError(f"backward: gradient has shape {g.shape} but output {i} has shape "
                             f"{t.shape}; they must match.")
        seeds.append((t, g))
    return seeds


def _walk(order, node_grads, leaf_grads, wanted_nodes, observers, retain_graph, create_graph,
          set_retained):
    """The backward loop: each node's summed gradient through its VJP to its inputs."""
    pop = node_grads.pop
    owned = set()      # keys whose summed gradient is the engine's own array (first order)
    for node in order:
        g = pop(node, None)
        if g is None:
            continue
        inputs = node.inputs
        if inputs is None:
            raise _freed_error(node)
        for t, v in zip(inputs, node.versions):
            if t._version != v:
                node.check_versions()
        if wanted_nodes and node in wanted_nodes:
            wanted_nodes[node] = g
        if node.retained is not None and set_retained:
            _set_grad(node.retained(), g, create_graph)
        prim = node.prim
        fast = prim.fast
        if create_graph or fast is None:
            input_grads = node.vjp(g, create_graph)
        elif prim.scatter is not None and not observers and _scatter_into(
                node, g.data, node_grads, leaf_grads, owned):
            input_grads = ()   # added straight into the input's summed gradient
        else:                                        # array rules: no Tensor per VJP step
            input_grads = node._vjp_arrays(g.data, fast)
        for obs in observers:
            obs(node, g, input_grads)
        for t, gi in zip(inputs, input_grads):
            if gi is None:
                continue
            child = t._node
            if create_graph:
                _accumulate(leaf_grads if child is None else node_grads,
                            t if child is None else child, gi)
            elif child is None:
                _add_into(leaf_grads, t, gi, owned)
            else:
                _add_into(node_grads, child, gi, owned)
        if not retain_graph:
            node.release()


def _add_into(store, key, g, owned):
    """First-order accumulation: the first sum is a new array, later ones add into it."""
    prev = store.get(key)
    if prev is None:
        store[key] = g
    elif key in owned:
        backend.np.add(prev.data, g.data, out=prev.data)
    else:
        store[key] = _wrap(prev.data + g.data)
        owned.add(key)


def _scatter_into(node, g, node_grads, leaf_grads, owned):
    """For a primitive whose gradient is g placed at a basic index of zeros (getitem, so
    split's pieces): add g into that slice of the input's summed gradient, one buffer for all
    pieces instead of a full-size array per piece (bench/NOTES.md). False: not applicable."""
    index = node.prim.scatter(node.params)
    if index is None:
        return False
    t = node.inputs[0]
    if not t.requires_grad:
        return True
    x = t.data
    key, store = (t, leaf_grads) if t._node is None else (t._node, node_grads)
    buf = store.get(key)
    if buf is None or key not in owned:
        data = backend.np.zeros(x.shape, dtype=x.dtype)
        if buf is not None:
            data += buf.data
        buf = store[key] = _wrap(data)
        owned.add(key)
    buf.data[index] += g if g.dtype == x.dtype else g.astype(x.dtype)
    return True


def run_backward(outputs, grad_outputs=None, retain_graph=False, create_graph=False,
                 capture=None):
    """The engine. Without `capture`, gradients accumulate into leaves' `.grad`; with it (a
    list of tensors), their gradients are returned instead and `.grad` is left alone."""
    seeds = _seed_gradients(outputs, grad_outputs)
    node_grads, leaf_grads = {}, {}
    for t, g in seeds:
        if t._node is None:
            _accumulate(leaf_grads, t, g)
        else:
            _accumulate(node_grads, t._node, g)
    wanted_nodes = {}
    if capture is not None:
        wanted_nodes = {t._node: None for t in capture if t._node is not None}
    observers = list(_observers)
    prev_mode = grad_mode.enabled
    # The graph is acyclic and freed by reference counting as it is walked; a cyclic-GC pass
    # over the millions of live graph objects would only cost time (measured: bench/NOTES.md).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        order = toposort([t._node for t, _ in seeds if t._node is not None])
        grad_mode.enabled = create_graph
        _walk(order, node_grads, leaf_grads, wanted_nodes, observers, retain_graph,
              create_graph, capture is None)
    finally:
        grad_mode.enabled = prev_mode
        if gc_was_enabled:
            gc.enable()
        graph_gc.release()
    if capture is not None:
        return [wanted_nodes.get(t._node) if t._node is not None else leaf_grads.get(t)
                for t in capture]
    given = set()
    for t, g in leaf_grads.items():
        if t.requires_grad:
            _set_grad(t, g, create_graph, given)
    return None


def _set_grad(t, g, create_graph, given=None):
    """Accumulate `g` into `t.grad`, never sharing an array between two `.grad`s."""
    if t is None:
        return
    if not create_graph:
        g = g.detach()
        data = g.data
        if given is not None:
            if id(data) in given or not data.flags.writeable or data.base is not None:
                g = Tensor._wrap(data.copy())
            given.add(id(g.data))
        else:  # a retained non-leaf grad: the same g flows on to its inputs' grads
            g = Tensor._wrap(data.copy())
    t.grad = g if t.grad is None else t.grad + g


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate into leaves' `.grad` the gradients of `tensors` (PyTorch's
    `torch.autograd.backward`)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = None if grad_tensors is None else [grad_tensors]
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(list(tensors), grad_tensors, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (PyTorch's
    `torch.autograd.grad`); `.grad` attributes are not touched.

    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> (g,) = cr.autograd.grad(x ** 2, x)
    >>> g.item()
    6.0
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise GraphError(f"autograd.grad: input {i} does not require grad; call "
                             "requires_grad_() on it before computing the outputs.")
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, grad_outputs, retain_graph, create_graph, capture=inputs)
    for i, (t, g) in enumerate(zip(inputs, result)):
        if g is None and not allow_unused:
            raise GraphError(f"autograd.grad: input {i} (shape {t.shape}) is not used to compute "
                             "the outputs; pass allow_unused=True to get None for it.")
    return tuple(result)


def retain_grad(t):
    """Ask a non-leaf tensor to keep its gradient in `.grad` after backward."""
    if t._node is not None:
        t._node.retained = weakref.ref(t)
