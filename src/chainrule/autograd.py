"""The graph and the reverse-mode engine.

Every differentiable operation on tensors that require grad records a `Node`: the primitive,
its input tensors (in order), its parameters and its output array. `backward` walks the nodes
reachable from the outputs in reverse topological order (computed iteratively, so a chain of
a million nodes is fine), calls each primitive's VJP rules and sums what arrives at each node
before passing it on, so a value used along several paths gets the sum over its paths.
Gradients reach `.grad` only on leaves (tensors made by the user) and on tensors that called
`retain_grad()`.
"""
import contextlib
import gc
import weakref

from . import backend
from .errors import GraphError
from .grad_mode import (enable_grad, grad_mode, is_grad_enabled, no_grad,  # noqa: F401
                        set_grad_enabled)
from .tensor import Tensor

np = backend.np


# The watchers of every backward pass (see `observe`); an empty list costs nothing.
_observers = []


class observe:
    """Call `fn(node, g, input_grads)` at each node of every backward pass inside the block:
    g is the gradient summed at the node's output, input_grads its inputs' shares (None where
    none flows); arrays in a first-order backward, Tensors under create_graph. The watcher
    sees the very path a plain backward runs; explain and anomaly mode are such watchers.

    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> seen = []
    >>> with cr.autograd.observe(lambda node, g, grads: seen.append(node.name)):
    ...     (x * x).sin().backward()
    >>> seen
    ['sin', 'mul']
    """

    def __init__(self, fn):
        self.fn = fn

    def __enter__(self):
        _observers.append(self.fn)
        return self

    def __exit__(self, *exc):
        _observers.remove(self.fn)
        return False


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
        """Each input's gradient (None where none flows), shaped like the input: the rules run
        on arrays (g an array) for first order, on recording Tensors under create_graph."""
        prim, inputs, params = self.prim, self.inputs, self.params
        if create_graph:
            y = Tensor._wrap(self.out)
            y.requires_grad, y._node = True, self
            args, rules = inputs, prim.vjps
        else:
            y, rules = self.out, prim.kernels
            args = [t.data for t in inputs]
        grads = [None] * len(inputs)
        for i, t in enumerate(inputs):
            rule = rules(i) if prim.variadic else rules[i]
            if rule is not None and t.requires_grad:
                gi, x = rule(g, y, *args, **params), t.data
                if type(gi) is not np.ndarray or gi.shape != x.shape or gi.dtype != x.dtype:
                    gi = _fit(gi, x)
                grads[i] = gi
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


def _fit(g, x):
    """A rule's result as the gradient of array `x`: summed back to its shape (undoing a
    broadcast), in its dtype; a plain array result is made an ndarray (0-d arithmetic gives
    NumPy scalars)."""
    if type(g) is not np.ndarray and not isinstance(g, Tensor):
        g = np.asarray(g)
    if g.shape != x.shape:
        g = sum_to(g, x.shape)
    if g.dtype != x.dtype:
        g = g.astype(x.dtype)
    return g


def sum_to(g, shape):
    """Sum the broadcast gradient `g` (array or Tensor) back to `shape`: the one place
    broadcasting is undone."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    if axes:   # np.add.reduce: np.sum without its Python wrapper (bench/NOTES.md)
        g = np.add.reduce(g, axis=axes, keepdims=True) if type(g) is np.ndarray else \
            g.sum(axes, keepdims=True)
    return g.reshape(shape)


def _freed_error(node):
    return GraphError(
        f"Trying to backward through the graph a second time (op '{node.prim.name}'): its saved "
        "values were freed after the first backward. Pass retain_graph=True to the first "
        "backward if you need to walk it again.")


def toposort(roots):
    """Nodes reachable from `roots`, every node before the nodes that feed it (iterative DFS)."""
    order, seen = [], set()
    add = seen.add
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


def _seed_gradients(outputs, grad_outputs, create_graph):
    """(output, its gradient) pairs: arrays for first order, Tensors under create_graph."""
    seeds = []
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"backward: outputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise GraphError(
                f"backward: output {i} (shape {t.shape}) does not require grad, so there is no "
                "graph to walk. Set requires_grad=True on the inputs you want gradients for, "
                "and do not compute the output under no_grad().")
        g = _seed(t, i, grad_outputs[i] if grad_outputs is not None else None)
        if g.shape != t.shape:
            from .errors import ShapeError
            raise ShapeError(f"backward: gradient has shape {g.shape} but output {i} has shape "
                             f"{t.shape}; they must match.")
        if not create_graph:
            g = g.data
        seeds.append((t, g))
    return seeds


def _seed(t, i, g):
    if g is None:
        if t.data.size != 1:
            raise GraphError(
                f"backward: output {i} has shape {t.shape}, not a scalar; pass gradient= "
                f"(an array of shape {t.shape}, e.g. ones) or reduce it first, e.g. "
                "loss.sum().backward() or loss.mean().backward().")
        return Tensor._wrap(np.ones(t.shape, dtype=t.dtype) if t.data.ndim else
                            np.array(1, dtype=t.dtype))   # 0.3 µs, not np.ones' 1.1
    if not isinstance(g, Tensor):   # copied: a .grad must never alias the caller's array
        return Tensor._wrap(np.array(backend.to_array(g, t.dtype)))
    return g if g.requires_grad else Tensor._wrap(g.data.copy())


class _Walk:
    """One backward pass: each node's summed gradient through its VJP to its inputs.

    First-order gradients are plain arrays end to end; the first sum at a node or leaf is a
    new array that later contributions are added into (`owned`), so no array that a rule
    returned (and may share: add passes g to both inputs) is ever modified."""

    def __init__(self, create_graph, retain_graph, wanted, set_retained):
        self.create_graph, self.retain_graph = create_graph, retain_graph
        self.wanted, self.set_retained = wanted, set_retained
        self.node_grads, self.leaf_grads, self.owned = {}, {}, set()
        self.observers = list(_observers)

    def add(self, t, g):
        """Add gradient `g` for tensor `t` to what its node (or, for a leaf, it) has summed."""
        child = t._node
        store, key = (self.leaf_grads, t) if child is None else (self.node_grads, child)
        prev = store.get(key)
        if prev is None:
            store[key] = g
        elif self.create_graph:
            store[key] = prev + g
        elif key in self.owned:
            np.add(prev, g, out=prev)
        else:
            store[key] = np.asarray(prev + g)
            self.owned.add(key)

    def run(self, order):
        for node in order:
            g = self.node_grads.pop(node, None)
            if g is not None:
                self.step(node, g)

    def step(self, node, g):
        inputs = node.inputs
        if inputs is None:
            raise _freed_error(node)
        for t, v in zip(inputs, node.versions):
            if t._version != v:
                node.check_versions()
        if node in self.wanted:
            self.wanted[node] = g
        if node.retained is not None and self.set_retained:
            _set_grad(node.retained(), g, self.create_graph)
        if node.prim.scatter is not None and not self.create_graph and self._scatter(node, g):
            input_grads = None           # added straight into the input's summed gradient
        else:
            input_grads = node.vjp(g, self.create_graph)
            for t, gi in zip(inputs, input_grads):
                if gi is not None:
                    self.add(t, gi)
        for observe in self.observers:
            observe(node, g, input_grads if input_grads is not None else node.vjp(g, False))
        if not self.retain_graph:
            node.release()

    def _scatter(self, node, g):
        """For a primitive whose gradient is g placed at a basic index of zeros (getitem, so
        split's pieces): add g into that slice of one buffer for the input, not a full-size
        array per piece (bench/NOTES.md). False: not applicable to these params."""
        index = node.prim.scatter(node.params)
        if index is None:
            return False
        t = node.inputs[0]
        if not t.requires_grad:
            return True
        x = t.data
        key, store = (t, self.leaf_grads) if t._node is None else (t._node, self.node_grads)
        buf = store.get(key)
        if buf is None or key not in self.owned:
            data = np.zeros(x.shape, dtype=x.dtype)
            if buf is not None:
                data += buf
            buf = store[key] = data
            self.owned.add(key)
        buf[index] += g if g.dtype == x.dtype else g.astype(x.dtype)
        return True


def run_backward(outputs, grad_outputs=None, retain_graph=False, create_graph=False,
                 capture=None):
    """The engine. Without `capture`, gradients accumulate into leaves' `.grad`; with it (a
    list of tensors), their gradients are returned instead and `.grad` is left alone."""
    seeds = _seed_gradients(outputs, grad_outputs, create_graph)
    wanted = {} if capture is None else {t._node: None for t in capture if t._node is not None}
    walk = _Walk(create_graph, retain_graph, wanted, capture is None)
    for t, g in seeds:
        walk.add(t, g)
    with _walking(create_graph):
        walk.run(toposort([t._node for t, _ in seeds if t._node is not None]))
    if capture is not None:
        return [_as_tensor(wanted.get(t._node) if t._node is not None else
                           walk.leaf_grads.get(t)) for t in capture]
    given = set()
    for t, g in walk.leaf_grads.items():
        if t.requires_grad:
            _set_grad(t, g, create_graph, given)
    return None


@contextlib.contextmanager
def _walking(create_graph):
    """Grad mode as create_graph asks while the rules run, and no cyclic-GC pass: the graph is
    acyclic and freed by reference counting as it is walked, so a pass over the millions of
    live graph objects would only cost time (measured: bench/NOTES.md)."""
    prev_mode, gc_was_enabled = grad_mode.enabled, gc.isenabled()
    gc.disable()
    grad_mode.enabled = create_graph
    try:
        yield
    finally:
        grad_mode.enabled = prev_mode
        if gc_was_enabled:
            gc.enable()
        graph_gc.release()


def _as_tensor(g):
    return g if g is None or isinstance(g, Tensor) else Tensor._wrap(g)


def _set_grad(t, g, create_graph, given=None):
    """Accumulate `g` into `t.grad`, never sharing an array between two `.grad`s."""
    if t is None:
        return
    if not create_graph:
        data = g.data if isinstance(g, Tensor) else g
        if given is not None:
            if id(data) in given or not data.flags.writeable or data.base is not None:
                data = data.copy()
            given.add(id(data))
        else:  # a retained non-leaf grad: the same g flows on to its inputs' grads
            data = data.copy()
        g = Tensor._wrap(data)
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
