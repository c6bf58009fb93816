"""Recording a backward pass: the graph before it runs, and what the real engine computes.

`record(loss)` walks the graph of `loss` (forward order), then runs `autograd.run_backward`
with an observer (`autograd.observe`). The observer sees each node right after
its VJP: the gradient that arrived at the node's output (∂L/∂output) and what it passed to
each input; those arrays are copied into the record, and the order in which the engine visited
the nodes is kept (`Record.backward`). Local derivatives for elementwise nodes (the registry's
`elementwise`) are obtained by calling the primitive's own VJP rule on the node's arrays with
a gradient of ones. Nothing here differentiates anything itself, so the record always agrees
with `.grad`.

Textbook rounding (`replay_rounded`) re-runs the recorded forward pass primitive by primitive
through `ops.apply` (the real primitives), rounding in place the output of every *function
evaluation* (the registry's `rounded`: exp, log, σ, tanh, sqrt, sin, cos, erf, division,
fractional powers) to k decimals before anything downstream uses it. Sums and products of
already-rounded numbers stay exact, as they do on paper: the seed's Loss = ½(0.8 − 0.59)² =
0.02205 keeps five decimals, and ∂Loss/∂w_o = −0.21 × 0.2419 × 0.57 = −0.02895543 keeps
eight. A local derivative that is itself a function evaluation (the registry's
`derivs_rounded`: cos x for sin, 1/x for ln, 1/(2√x) for √) is rounded to k decimals as well:
the replay records such a node with a copy of its primitive whose rule multiplies the upstream
gradient by the rounded local derivative (its own rule fed a gradient of ones, rounded). The
real backward pass then runs on that replayed graph, so leaves get exactly the gradients a
hand calculation gets.

Devices: the graph may live on a device (a GPU); the backward pass runs there, and every array
the record keeps (values, gradients, local derivatives, the params of a step) is copied to the
host here (`_host`), so the rest of explain reads NumPy arrays only.
"""
import copy

import numpy as np

from .. import autograd, backend
from ..errors import GraphError
from ..ops.inplace import value_at_forward


def _host(a, copy=True):
    """The array `a` on the host (NumPy), a copy unless copy=False and it is there already."""
    if type(a) is np.ndarray or not backend.is_array(a):
        return np.array(a, copy=True) if copy else np.asarray(a)
    return backend.to_host(a)


def _host_params(params):
    """A node's params with any device array (class labels, an index) copied to the host."""
    def plain(v):
        if type(v) is np.ndarray or not backend.is_array(v):
            return plain_seq(v) if type(v) in (tuple, list) else v
        return backend.to_host(v)

    def plain_seq(v):
        return type(v)(plain(x) for x in v)
    return {k: plain(v) for k, v in params.items()}


class Value:
    """One tensor of the graph: a leaf (parameter, input, constant) or a node's output."""

    __slots__ = ("tensor", "node", "name", "user_named", "value", "grad", "index", "step",
                 "unrounded", "role", "trace", "image")

    def __init__(self, tensor, node, index):
        self.tensor = tensor
        self.node = node
        self.name = tensor.name if tensor is not None else None
        self.user_named = self.name is not None
        # a node's output as it computed it (an in-place update may have overwritten it since)
        self.value = _host(value_at_forward(node) if node is not None else tensor._data)
        self.grad = None        # ∂L/∂value, as observed (None: the gradient does not reach it)
        self.index = index
        self.step = None        # the Step that produced it (None for leaves)
        self.unrounded = None   # in rounding mode: the value before rounding
        self.role = None        # set by the derivation: parameter, input, target, constant...
        self.trace = getattr(node, "trace", None) if node is not None else None
        self.image = None       # windows of an image: {'value': image, 'geometry'} (conv.py)

    @property
    def is_leaf(self):
        return self.node is None

    @property
    def is_param(self):
        return self.node is None and self.tensor.requires_grad

    @property
    def scalar(self):
        return self.value.size == 1

    def __repr__(self):
        return f"<Value {self.name} {self.value.shape}>"


class Step:
    """One primitive application: inputs, output, and what the backward pass did there."""

    __slots__ = ("node", "prim", "params", "inputs", "out", "local", "passed", "check",
                 "local_unrounded", "upstream")

    def __init__(self, node, inputs, out):
        self.node = node
        self.prim = node.prim
        self.params = _host_params(node.params)
        self.inputs = inputs            # list of Value
        self.out = out                  # Value
        self.local = [None] * len(inputs)   # ∂out/∂input_i (elementwise), from the VJP rule
        self.local_unrounded = [None] * len(inputs)   # textbook mode: before rounding
        self.passed = [None] * len(inputs)  # gradient the engine sent to input i
        self.check = [None] * len(inputs)   # verify results (filled by verify.py)
        self.upstream = None                # the gradient that arrived at the output

    @property
    def elementwise(self):
        """Whether the local derivative is an array shaped like the output (the registry's
        `elementwise`)."""
        return self.prim.elementwise

    @property
    def original(self):
        """The registry entry (in textbook mode the replay may record a copy whose rule
        rounds the local derivative)."""
        return original(self.prim)


class Record:
    """Everything one backward pass showed: values in forward order, steps, the root."""

    def __init__(self, root_tensor):
        self.values = []          # every Value, leaves first-seen, in forward order
        self.steps = []           # Steps in forward order
        self.backward = []        # Steps in the order the engine ran their VJPs
        self.root = None
        self.by_node = {}
        self.by_leaf = {}
        self.root_tensor = root_tensor

    def params(self):
        return [v for v in self.values if v.is_param]


def forward_order(root):
    """Nodes of `root`'s graph in forward order, and each node's output tensor."""
    if root._node is None:
        raise GraphError("explain: the tensor has no graph (it is a leaf, or was computed under "
                         "no_grad). Compute the loss from tensors with requires_grad=True.")
    if root._node.inputs is None:
        raise GraphError("explain: this graph was already walked by backward() and freed. Call "
                         "cr.explain(loss) instead of loss.backward(), or backward with "
                         "retain_graph=True first.")
    order = list(reversed(autograd.toposort([root._node])))
    outputs = {root._node: root}
    for node in order:
        for t in node.inputs:
            if t._node is not None:
                outputs.setdefault(t._node, t)
    return order, outputs


def build(root, traces=None):
    """The Record of `root`'s graph before the backward pass (values copied now)."""
    order, outputs = forward_order(root)
    rec = Record(root)

    def leaf(t):
        v = rec.by_leaf.get(id(t))
        if v is None:
            v = rec.by_leaf[id(t)] = Value(t, None, len(rec.values))
            rec.values.append(v)
        return v

    named = set()
    for node in order:
        ins = [rec.by_node[t._node].out if t._node is not None else leaf(t) for t in node.inputs]
        out = Value(outputs[node], node, len(rec.values))
        if out.user_named:    # `h += 1` leaves two values named h: the later one is h2
            out.name = _unused(out.name, named)
        if traces and out.trace is None:
            out.trace = traces.get(id(outputs[node]))
        step = Step(node, ins, out)
        out.step = step
        rec.values.append(out)
        rec.steps.append(step)
        rec.by_node[node] = step
    rec.root = rec.by_node[root._node].out
    return rec


def _unused(name, named):
    k, free = 2, name
    while free in named:
        free, k = f"{name}{k}", k + 1
    named.add(free)
    return free


def shown(t):
    """Whether a derivation names this input (an unnamed constant such as the 2 of x**2 is
    written as a number, and nobody asks for the derivative with respect to it)."""
    return t._node is not None or t.requires_grad or t.name is not None or t._data.size > 1


def local_derivative(step, i, prim=None):
    """∂out/∂input_i elementwise, from the primitive's own VJP rule fed a gradient of ones;
    None where that is not an elementwise quantity (matmul, sum, reshape...)."""
    rule = (prim or step.prim).vjp_rule(i)
    node = step.node
    if rule is None or node.inputs is None:
        return None
    x = node.inputs[i]
    if x._data.dtype.kind != "f" or not shown(x):
        return None
    simple = step.elementwise or (node.out.size == 1 and x._data.size == 1)
    if not simple:
        return None
    with np.errstate(all="ignore"):   # the rule on arrays: the engine's first-order path
        d = _host(rule(np.ones_like(node.out), node.out,
                       *[t._data for t in node.inputs], **node.params))
    if d.size == node.out.size:
        return d.reshape(node.out.shape)
    return np.array(np.broadcast_to(d, node.out.shape), copy=True)


class _Observer:
    """Watches one backward pass (`autograd.observe`)."""

    def __init__(self, rec):
        self.rec = rec

    def __call__(self, node, g, input_grads):
        step = self.rec.by_node.get(node)
        if step is None:
            return
        if step.upstream is None:
            self.rec.backward.append(step)
        step.upstream = _add(step.upstream, g)
        step.out.grad = _add(step.out.grad, g)
        for i, gi in enumerate(input_grads):
            if gi is not None:
                step.passed[i] = _add(step.passed[i], autograd.sum_to(_host(gi, copy=False),
                                                                       step.inputs[i].value.shape))
                if step.inputs[i].is_leaf:
                    step.inputs[i].grad = _add(step.inputs[i].grad, gi)
        for i in range(len(step.inputs)):
            try:
                step.local[i] = local_derivative(step, i)
                if step.prim is not original(step.prim):
                    step.local_unrounded[i] = local_derivative(step, i, original(step.prim))
            except Exception:  # a display aid must never break the backward pass itself
                step.local[i] = None


def _add(prev, g):
    g = _host(g)
    return g if prev is None else prev + g


def run(root, gradient=None, retain_graph=False, traces=None):
    """Build the record of `root`, then run the real backward pass while observing it."""
    rec = build(root, traces)
    with autograd.observe(_Observer(rec)):   # explain runs first order: arrays arrive
        autograd.run_backward([root], None if gradient is None else [gradient], retain_graph,
                              False)
    for v in rec.values:   # a leaf's gradient as the engine summed it back to its shape
        if v.is_leaf and v.grad is not None and v.grad.shape != v.value.shape:
            v.grad = np.asarray(autograd.sum_to(v.grad, v.value.shape))
    return rec


# ---- textbook rounding ----
_ORIGINALS = {}     # id(copy) -> (copy, the registry entry it was made from)
_COPIES = {}        # (id(entry), flags, decimals) -> copy


def original(prim):
    """The registry entry behind `prim` (itself, or the entry a rounding copy was made of)."""
    found = _ORIGINALS.get(id(prim))
    return prim if found is None else found[1]


def _rounded_rule(rule, decimals):
    def rounded(g, y, *xs, **params):
        with np.errstate(all="ignore"):
            local = np.asarray(rule(np.ones_like(y), y, *xs, **params))
        return g * np.round(local, decimals)
    return rounded


def textbook_primitive(prim, node, decimals):
    """`prim`, or (where a hand calculation rounds a local derivative of this node) a copy of
    it whose rule for that input uses the derivative rounded to `decimals`."""
    if not prim.elementwise or prim.variadic:
        return prim
    flags = tuple(prim.rounds_derivative(node, i) for i in range(len(node.inputs)))
    if not any(flags):
        return prim
    key = (id(prim), flags, decimals)
    found = _COPIES.get(key)
    if found is None:
        found = copy.copy(prim)
        found.vjps = tuple(_rounded_rule(rule, decimals) if flag and rule is not None else rule
                           for flag, rule in zip(flags, prim.vjps))
        found.first_order_kernel = None
        _COPIES[key] = found
        _ORIGINALS[id(found)] = (found, prim)
    return found


def replay_rounded(root, decimals):
    """Re-run `root`'s forward pass through the real primitives, rounding each function
    evaluation (and, for the backward pass, each local derivative a hand calculation looks up)
    to `decimals` in place before it is used downstream. Leaves are shared, so the backward
    pass of the returned loss fills their `.grad`. Also returns {new output tensor: unrounded
    value} for display, and {new output tensor: source line} from the original nodes."""
    from ..ops.registry import apply
    order, outputs = forward_order(root)
    new = {}
    unrounded = {}
    traces = {}
    with autograd.enable_grad(), np.errstate(all="ignore"):
        for node in order:
            ins = tuple(new.get(id(t), t) for t in node.inputs)
            prim = textbook_primitive(node.prim, node, decimals)
            out = apply(prim, ins, **node.params)
            if node.prim.rounds(node) and out._data.dtype.kind == "f":
                unrounded[id(out)] = _host(out._data)
                np.round(out._data, decimals, out=out._data)
            old = outputs[node]
            out.name = old.name
            if getattr(node, "trace", None) is not None:
                traces[id(out)] = node.trace
            new[id(old)] = out
    return new[id(root)], unrounded, traces
