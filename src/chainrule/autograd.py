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
import itertools
import threading
import weakref

from . import backend
from .errors import GraphError
from .grad_mode import (enable_grad, grad_mode, is_grad_enabled, no_grad,  # noqa: F401
                        set_grad_enabled)
from .grad_mode import _set_enabled as _set_grad_enabled, grad_enabled
from .graph_gc import FREEZE_EVERY, graph_gc  # noqa: F401  (ops/registry.py imports both)
from .tensor import Tensor

np = backend.np


# The watchers of every backward pass in any thread (anomaly mode, process-wide as in
# PyTorch); `observe` adds watchers of this thread's passes only. Empty lists cost nothing.
_observers = []
_local = threading.local()


def _thread_observers():
    watchers = getattr(_local, "observers", None)
    if watchers is None:
        watchers = _local.observers = []
    return watchers


def _thread_finishers():
    """This thread's end-of-pass watchers (`observe(done=...)`)."""
    finishers = getattr(_local, "finishers", None)
    if finishers is None:
        finishers = _local.finishers = []
    return finishers


class observe:
    """Call `fn(node, g, input_grads)` at each node of every backward pass that this thread
    runs inside the block: g is the gradient summed at the node's output, input_grads its
    inputs' shares (None where none flows); arrays in a first-order backward, Tensors under
    create_graph. The watcher sees the very path a plain backward runs; explain and anomaly
    mode are such watchers. Backward passes in other threads are not watched.

    `done(leaves)`, when given, is called as each such pass ends: after a backward that
    accumulates into `.grad` has written it, with the leaves whose `.grad` it wrote (an empty
    list after `autograd.grad`, which writes none). Data-parallel training reduces gradients
    there (`nn.parallel.DistributedDataParallel`). Either callable may be None.

    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> seen = []
    >>> with cr.autograd.observe(lambda node, g, grads: seen.append(node.name)):
    ...     (x * x).sin().backward()
    >>> seen
    ['sin', 'mul']
    """

    def __init__(self, fn=None, done=None):
        self.fn, self.done = fn, done

    def __enter__(self):
        if self.fn is not None:
            _thread_observers().append(self.fn)
        if self.done is not None:
            _thread_finishers().append(self.done)
        return self

    def __exit__(self, *exc):
        if self.fn is not None:
            _thread_observers().remove(self.fn)
        if self.done is not None:
            _thread_finishers().remove(self.done)
        return False


class Node:
    """One recorded primitive application: what its VJP needs, nothing more."""

    # versions: each input's version counter when the node was recorded. watched: other values
    # the rules read that an in-place update could change, as (version counter, version then,
    # what): the output (what = -1) for a primitive that saves it, non-differentiable tensors
    # such as class labels or an index (what = their name), set by ops/registry.py.
    __slots__ = ("prim", "inputs", "params", "out", "versions", "retained", "trace", "watched",
                 "__weakref__")

    def __init__(self, prim, inputs, params, out):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.out = out
        if len(inputs) == 2:
            self.versions = (inputs[0]._vc[0], inputs[1]._vc[0])
        elif len(inputs) == 1:
            self.versions = (inputs[0]._vc[0],)
        else:
            self.versions = tuple([t._vc[0] for t in inputs])
        self.retained = None
        self.trace = None
        self.watched = None

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
            args = [t._data for t in inputs]
        grads = [None] * len(inputs)
        block = prim.block
        for i, t in enumerate(inputs):
            rule = rules(i) if prim.variadic else rules[i]
            if rule is not None and t.requires_grad:
                gi = rule(g, y, *args, **params) if block is None else g[block(params, i)]
                x = t._data
                if type(gi) is not np.ndarray or gi.shape != x.shape or gi.dtype != x.dtype:
                    gi = _fit(gi, x)
                grads[i] = gi
        return grads

    def release(self):
        self.inputs = None
        self.out = None

    def check_versions(self):
        """Raise where an input changed in place since the node recorded it and its rules read
        the values (the primitive saves its inputs). (An input that an in-place update moved
        onto a new node was already replaced by the snapshot of what it was: `_repoint`.)"""
        for j, (t, v) in enumerate(zip(self.inputs, self.versions)):
            if t._vc[0] != v and self.reads_input(j):
                raise _modified_error(self, f"an input of shape {t.shape}", v, t._vc[0])

    def reads_input(self, j):
        """Whether a rule that will run reads input j's values (the registry's `saves` and
        `reads`)."""
        prim = self.prim
        if "inputs" not in prim.saves:
            return False
        if prim.reads is None or prim.variadic:
            return True
        return any(t.requires_grad and j in r for t, r in zip(self.inputs, prim.reads))

    def check_watched(self):
        for vc, v, what in self.watched:
            if vc[0] != v:
                label = (f"its output (shape {self.out.shape})" if what == -1 else
                         f"the tensor it was given as {what}")
                raise _modified_error(self, label, v, vc[0])

    def __repr__(self):
        return f"<Node {self.prim.name}>"


def _modified_error(node, what, v, now):
    return GraphError(
        f"{node.prim.name}: one of the variables needed for gradient computation has been "
        f"modified by an inplace operation (PyTorch's words): {what} was modified in place "
        f"after the forward pass saved it (version {v} -> {now}); its gradient would be "
        "wrong. Use an out-of-place operation (x = x + 1, not x += 1), or .clone() the tensor "
        "before changing it.")


def _fit(g, x):
    """A rule's result as the gradient of array `x`: summed back to its shape (undoing a
    broadcast), in its dtype; a plain array result is made an ndarray (0-d arithmetic gives
    NumPy scalars)."""
    if type(g) is not np.ndarray and not isinstance(g, Tensor) and not backend.is_array(g):
        g = np.asarray(g)    # a NumPy scalar
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
    for root in roots:
        if root not in seen:
            seen.add(root)
            _post_order(root, seen, order)
    order.reverse()
    return order


def _post_order(root, seen, order):
    """Append the unseen nodes below `root`, then `root`, in post-order (explicit stack)."""
    stack = [(root, 0)]
    push, pop, add = stack.append, stack.pop, seen.add
    while stack:
        node, i = pop()
        inputs = node.inputs
        if inputs is None:
            raise _freed_error(node)
        n = len(inputs)
        while i < n:
            t = inputs[i]
            i += 1
            if _rebased and t._vc[0] != node.versions[i - 1]:
                t = _repoint(node, i - 1)
            child = t._node
            if child is not None and t.requires_grad and child not in seen:
                add(child)
                push((node, i))
                push((child, 0))
                break
        else:
            order.append(node)


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
        g = _seed(t, i, grad_outputs[i] if grad_outputs is not None else None, create_graph)
        if g.shape != t.shape:
            from .errors import ShapeError
            raise ShapeError(f"backward: gradient has shape {g.shape} but output {i} has shape "
                             f"{t.shape}; they must match.")
        if not create_graph:
            g = g._data
        seeds.append((t, g))
    return seeds


def _seed(t, i, g, create_graph):
    """The gradient of output t to start from: a new array in t's dtype (PyTorch casts it
    too), so no `.grad` ever aliases the caller's `gradient=`; under create_graph a gradient
    that requires grad stays in the graph (cast by a recorded op if need be)."""
    if g is None:
        if t._data.size != 1:
            raise GraphError(
                f"backward: output {i} has shape {t.shape}, not a scalar; pass gradient= "
                f"(an array of shape {t.shape}, e.g. ones) or reduce it first, e.g. "
                "loss.sum().backward() or loss.mean().backward().")
        xp = np if type(t._data) is np.ndarray else backend.xp_of(t._data)
        return Tensor._wrap(xp.ones(t.shape, dtype=t.dtype) if t._data.ndim else
                            xp.array(1, dtype=t.dtype))   # 0.3 µs, not np.ones' 1.1
    if isinstance(g, Tensor):
        if create_graph and g.requires_grad:
            return g if g.dtype == t.dtype else g.astype(t.dtype)
        g = g._data
    if not backend.is_array(g):
        g = backend.to_array(g)
    g = backend.beside(g, t._data)
    return Tensor._wrap(backend.xp_of(g).array(g, dtype=t.dtype))   # always a copy


class _Walk:
    """One backward pass: each node's summed gradient through its VJP to its inputs.

    First-order gradients are plain arrays end to end; the first sum at a node or leaf is a
    new array that later contributions are added into (`owned`), so no array that a rule
    returned (and may share: add passes g to both inputs) is ever modified."""

    def __init__(self, create_graph, retain_graph, wanted, set_retained):
        self.create_graph, self.retain_graph = create_graph, retain_graph
        self.wanted, self.set_retained = wanted, set_retained
        self.node_grads, self.leaf_grads, self.owned = {}, {}, set()
        self.observers = _observers + _thread_observers()

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
            total = prev + g
            store[key] = total if backend.is_array(total) else np.asarray(total)
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
            if t._vc[0] != v:
                node.check_versions()
                break
        if node.watched is not None:
            node.check_watched()
        if _grad_hooks and id(node) in _grad_hooks:   # Tensor.register_hook on its output
            g = _call_hooks(node, g, self.create_graph)
        if node in self.wanted:
            self.wanted[node] = g
        if node.retained is not None and self.set_retained:
            _set_grad(node.retained(), g, self.create_graph)
        if node.prim.scatter is not None and not self.create_graph and \
                self._scatter(node, g, inputs[0]):
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

    def _scatter(self, node, g, t):
        """For a primitive whose gradient is g placed at a basic index of zeros (getitem, so
        split's pieces): add g into that slice of one buffer for the input t, not a full-size
        array per piece (bench/NOTES.md). False: not applicable to these params."""
        index = node.prim.scatter(node.params)
        if index is None:
            return False
        if not t.requires_grad:
            return True
        x = t._data
        key, store = (t, self.leaf_grads) if t._node is None else (t._node, self.node_grads)
        buf = store.get(key)
        if buf is None or key not in self.owned:
            data = backend.xp_of(x).zeros(x.shape, dtype=x.dtype)
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
    finishers = list(_thread_finishers())
    for t, g in seeds:
        walk.add(t, g)
    with _walking(create_graph) as walking:
        walk.run(walking.claim(toposort([t._node for t, _ in seeds if t._node is not None])))
        if _grad_hooks:
            for t, g in list(walk.leaf_grads.items()):
                if id(t) in _grad_hooks:
                    walk.leaf_grads[t] = _call_hooks(t, g, create_graph)
    if capture is not None:
        result = [_as_tensor(wanted.get(t._node) if t._node is not None else
                             walk.leaf_grads.get(t)) for t in capture]
        for done in finishers:
            done([])
        return result
    _write_leaf_grads(walk.leaf_grads, create_graph, finishers)
    return None


def _write_leaf_grads(leaf_grads, create_graph, finishers):
    """Accumulate each leaf's summed gradient into its `.grad`, then tell the end-of-pass
    watchers which leaves got one."""
    given = set()
    _leaf_lock.acquire()    # leaves (a shared model's parameters) may get grads from two threads
    try:
        for t, g in leaf_grads.items():
            if t.requires_grad:
                _set_grad(t, g, create_graph, given)
    finally:
        _leaf_lock.release()
    if finishers:
        leaves = [t for t in leaf_grads if t.requires_grad]
        for done in finishers:
            done(leaves)


# ---- in-place updates of tensors in the graph (ops/inplace.py) ----
# {id of a tensor an in-place update moved onto a new node: (weak reference to it, [(version
# from which it plays its new role, weak reference to the snapshot of its old role), ...])}.
# A node recorded before the update reads the snapshot in its place (the node the tensor had
# then), so its gradient goes where it went; the engine looks here only when a version differs.
_rebased = {}


def note_rebase(t, snapshot):
    """Record that `t` now plays a new role in the graph (from its current version on) and
    that `snapshot` plays the one it had before."""
    key = id(t)
    with _leaf_lock:
        entry = _rebased.get(key)
        if entry is None or entry[0]() is not t:
            entry = _rebased[key] = (weakref.ref(t, _forgetter(_rebased, key)), [])
        entry[1].append((t._vc[0], weakref.ref(snapshot)))


def _forgetter(table, key):
    """A weakref callback dropping table[key] once its tensor is gone (ids are reused)."""
    def forget(ref):
        entry = table.get(key)
        if entry is not None and entry[0] is ref:
            del table[key]
    return forget


def _repoint(node, i):
    """Input i of `node` changed version since it was recorded; if an in-place update moved it
    onto a new node, point `node` at the snapshot of its old role (for good: the snapshot
    lives as long as the node) where its rules do not read the values. Returns the tensor
    to follow."""
    t, v = node.inputs[i], node.versions[i]
    s = _as_recorded(t, v, node)
    if s is not t and not node.reads_input(i):
        node.inputs = node.inputs[:i] + (s,) + node.inputs[i + 1:]
        node.versions = node.versions[:i] + (s._vc[0],) + node.versions[i + 1:]
    return s


def _as_recorded(t, v, node):
    """The tensor that played t's role when `node` recorded it at version v."""
    entry = _rebased.get(id(t))
    if entry is None or entry[0]() is not t:
        return t
    for since, ref in entry[1]:
        if v < since:
            snapshot = ref()
            if snapshot is None:
                raise _freed_error(node)
            return snapshot
    return t


# ---- gradient hooks (Tensor.register_hook) ----
# {id of a non-leaf tensor's node, or of a leaf tensor: (weak reference to it, [hook, ...])}
# (by id: a Tensor's == is elementwise); the engine looks here only while a hook is registered. A hook is called with the gradient as a Tensor when it is
# computed (a non-leaf's before it flows on to the node's inputs and to retain_grad, a leaf's
# before it is accumulated into .grad or returned by autograd.grad) and may return a
# replacement of the same shape.
_grad_hooks = {}


class RemovableHandle:
    """What registering a hook returns: `handle.remove()` unregisters it (also a context
    manager), as PyTorch's `torch.utils.hooks.RemovableHandle`. `hooks` is the list (or dict,
    keyed by `key`) the hook was added to."""

    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        hooks, key = self._hooks, self._key
        if isinstance(hooks, dict):
            hooks.pop(key, None)
        elif any(h is key for h in hooks):
            del hooks[next(i for i, h in enumerate(hooks) if h is key)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def register_hook(t, hook):
    """Call `hook(grad)` whenever the gradient of tensor `t` is computed (Tensor.register_hook).

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> handle = x.register_hook(lambda g: g * 10)
    >>> (x * 3).sum().backward()
    >>> x.grad.tolist()
    [30.0, 30.0]
    >>> handle.remove()
    """
    if not t.requires_grad:
        raise GraphError("cannot register a hook on a tensor that doesn't require gradient; "
                         "call requires_grad_() on it first (or register it on a tensor made "
                         "from one that requires grad)")
    if not callable(hook):
        raise TypeError(f"register_hook: expected a callable, got {type(hook).__name__}")
    key = t._node if t._node is not None else t
    with _leaf_lock:
        hooks = _hooks_of(key)
        if hooks is None:
            hooks = []
            _grad_hooks[id(key)] = (weakref.ref(key, _forgetter(_grad_hooks, id(key))), hooks)
        hooks.append(hook)
    return RemovableHandle(hooks, hook)


def _hooks_of(obj):
    entry = _grad_hooks.get(id(obj))
    return entry[1] if entry is not None and entry[0]() is obj else None




def _call_hooks(key, g, create_graph):
    """Run the hooks of `key` (a node or leaf) in order on gradient g (an array, or a Tensor
    under create_graph)."""
    for hook in list(_hooks_of(key) or ()):
        arg = g if create_graph else Tensor._wrap(g)
        new = hook(arg)
        if new is None:
            continue
        if not isinstance(new, Tensor):
            new = Tensor._wrap(backend.to_array(new))
        if new.shape != arg.shape:
            raise GraphError(f"hook {getattr(hook, '__name__', hook)!r} has changed the size of "
                             f"the gradient: {arg.shape} -> {new.shape}; a hook must return a "
                             "gradient of the same shape (or None)")
        if create_graph:
            g = new if new.dtype == arg.dtype else new.astype(arg.dtype)
        else:   # a copy: the engine may add into it, and the hook may have returned its own
            g = backend.xp_of(new._data).array(new._data, dtype=arg.dtype)
    return g


# ---- threads ----
# Grad mode is per thread (grad_mode.py). What a backward pass changes beyond its own graph is
# process-wide, so it is shared safely here: the collector is paused while any thread walks a
# graph and resumed (if it was on) when the last one leaves; one graph cannot be walked by two
# threads at once (their nodes are compared when passes overlap); leaves' .grad is written
# under a lock. Threads: docs/conventions.md.
_leaf_lock = threading.Lock()


class _Collector:
    """Pauses Python's cyclic collector while backward passes run, in any number of threads."""
    __slots__ = ("lock", "walkers", "restore")

    def __init__(self):
        self.lock = threading.Lock()
        self.walkers = 0         # backward passes running now
        self.restore = False     # whether the collector was on when the first one started

    # acquire/release, not `with`: half the cost (nothing between them can raise)
    def pause(self):
        self.lock.acquire()
        if not self.walkers:
            self.restore = gc.isenabled()
            gc.disable()
        self.walkers += 1
        self.lock.release()

    def resume(self):
        self.lock.acquire()
        self.walkers -= 1
        if not self.walkers and self.restore:
            gc.enable()
        self.lock.release()


_collector = _Collector()
_walks = {}     # number -> (thread id, nodes in order) for each backward pass running now
_walk_numbers = itertools.count()


def _claim(order):
    """Register this pass's nodes (returns its number); a GraphError if an older pass in
    another thread is walking any of them. Without a lock (one costs ~0.3 µs per pass here):
    registering and copying the registry are single, GIL-atomic dict operations, and of two
    overlapping passes the younger one (the higher number) raises, so exactly one walks."""
    me, key = threading.get_ident(), next(_walk_numbers)
    _walks[key] = (me, order)
    if len(_walks) == 1:
        return key                      # the only pass running (the usual case)
    mine = None
    for k, (ident, other) in list(_walks.items()):
        if k < key and ident != me:
            mine = set(order) if mine is None else mine
            if not mine.isdisjoint(other):
                del _walks[key]
                node = next(n for n in other if n in mine)
                raise GraphError(
                    f"backward: another thread is walking this graph right now (op "
                    f"'{node.prim.name}' is in both backward passes); one graph cannot be "
                    "differentiated by two threads at once. Build a separate graph per "
                    "thread, or let one thread finish (e.g. hold a lock around backward).")
    return key


class _walking:
    """Grad mode as create_graph asks while the rules run (this thread's), no cyclic-GC pass
    (the graph is acyclic and freed by reference counting as it is walked, so a pass over the
    millions of live graph objects would only cost time: bench/NOTES.md), and the walked nodes
    claimed for this thread (`claim(order)`, once the order is known)."""
    __slots__ = ("create_graph", "prev_mode", "key")

    def __init__(self, create_graph):
        self.create_graph, self.key = create_graph, None

    def __enter__(self):
        self.prev_mode = grad_enabled()
        _collector.pause()
        _set_grad_enabled(self.create_graph)
        return self

    def claim(self, order):
        self.key = _claim(order)
        return order

    def __exit__(self, *exc):
        _set_grad_enabled(self.prev_mode)
        if self.key is not None:
            del _walks[self.key]
        _collector.resume()
        graph_gc.release()
        return False


def _as_tensor(g):
    return g if g is None or isinstance(g, Tensor) else Tensor._wrap(g)


def _set_grad(t, g, create_graph, given=None):
    """Accumulate `g` into `t.grad`, never sharing an array between two `.grad`s.

    As in PyTorch, a first-order backward adds into the existing `.grad` in place (a saved
    reference to it sees the sum) when it is a plain tensor of the same shape and dtype. Under
    create_graph a first gradient is cloned (it may be the caller's `gradient=`, a view of it,
    or handed to two tensors: add passes g to both inputs), and a sum is a new tensor in the
    graph."""
    if t is None:
        return
    old = t.grad
    if not create_graph:
        data = g._data if isinstance(g, Tensor) else g
        if old is not None and _adds_in_place(old, data):
            np.add(old._data, data, out=old._data)
            old._version += 1
            return
        if given is not None:
            if id(data) in given or data.base is not None or _read_only(data):
                data = data.copy()
            given.add(id(data))
        else:  # a retained non-leaf grad: the same g flows on to its inputs' grads
            data = data.copy()
        g = Tensor._wrap(data)
    elif old is None:
        g = g.clone() if g.requires_grad else Tensor._wrap(g._data.copy())
    t.grad = g if old is None else old + g


def _read_only(a):
    return type(a) is np.ndarray and not a.flags.writeable   # device arrays have no flag


def _adds_in_place(old, data):
    """Whether the new gradient array `data` can be added into the tensor `old` (a `.grad`)."""
    a = old._data
    return (old._node is None and not old.requires_grad and type(a) is type(data) and
            a.shape == data.shape and a.dtype == data.dtype and
            (type(a) is not np.ndarray or a.flags.writeable))


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
