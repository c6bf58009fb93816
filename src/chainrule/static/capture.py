"""Capture: one eager call of a function, watched, written down as a flat program.

A `Session` watches one call through the engine's public extension points and a few wrappers
that exist only while it runs:

- `ops.registry.op_hooks`: every operation outside the backward pass (`apply`, `compute`,
  in-place updates, `decide`), with or without grad mode, becomes an instruction
  (function, input buffers, parameters) -> output buffer;
- `autograd.run_backward` (wrapped) and `autograd.observe`: each backward pass becomes its
  schedule (seeds, the engine's node order, which rule runs for which input, how gradients are
  summed, which leaves get `.grad`);
- optimizer steps, `zero_grad`, learning-rate schedules and gradient clipping (wrapped) become
  host calls, replayed by calling them again (they read the current lr, the current `.grad`);
- `Module.__call__` (wrapped): which modules ran, for the guards (train/eval mode, parameter
  identity).

Buffers ("slots") are numbered: the call's inputs, state read from tensors (parameters,
buffers, `.grad`), constants, and the outputs of instructions. Arrays are matched to buffers
by identity; an array that is none of these but was computed from traced values (taint.py)
cannot be replayed, and the capture says so. The result is a `Program` (program.py).
"""
import sys
import types

from .. import autograd, backend
from ..errors import CompileError
from ..ops import registry
from ..tensor import Tensor
from . import taint
from .taint import Traced, trace, traced_by

np = backend.np

_PACKAGE = __name__.rsplit(".", 2)[0]          # "chainrule"
_PACKAGE_DIR = sys.modules[_PACKAGE].__file__.rsplit("/", 1)[0] + "/"


class NotCapturable(Exception):
    """Raised inside a capture for a construct the replay cannot reproduce (soft failure)."""


# ---------------------------------------------------------------- buffers and instructions

class Slot:
    """One buffer of the program: an input, state read from a tensor, a constant, or the
    output of an instruction."""
    __slots__ = ("id", "kind", "shape", "dtype", "value", "tensor", "attr", "pos", "label",
                 "arg", "snapshot", "mutated", "persistent", "tensor_ref")

    def __init__(self, id, kind, array=None, **kw):
        self.id, self.kind = id, kind
        self.shape = getattr(array, "shape", None)
        self.dtype = getattr(array, "dtype", None)
        self.value = None          # constants
        self.tensor = None         # loads: the tensor read (strong until the capture ends)
        self.tensor_ref = None     # loads: a weak reference to it
        self.attr = None           # loads: "data" or "grad"
        self.pos = 0               # loads: instruction index before which it is read
        self.label = ""            # what the rendering calls it
        self.arg = None            # inputs: index of the input leaf
        self.snapshot = None       # loads of tensors made inside fn: their value when first read
        self.mutated = False       # written by a recorded in-place update
        self.persistent = True     # loads: the tensor outlives the call (state)
        for k, v in kw.items():
            setattr(self, k, v)


class Op:
    """out = fn(*inputs, **params): a primitive's forward (kind "apply") or a `compute`."""
    __slots__ = ("kind", "fn", "inputs", "params", "out", "name", "random", "prim")

    def __init__(self, kind, fn, inputs, params, out, name, prim=None):
        self.kind, self.fn, self.inputs, self.params, self.out = kind, fn, inputs, params, out
        self.name, self.prim, self.random = name, prim, False   # random: it draws numbers


class Inplace:
    """fn(target, other): an in-place tensor update (`p -= lr * g`, `copy_`, BatchNorm's
    running statistics); owner: the tensor whose version it bumps."""
    __slots__ = ("fn", "target", "other", "name", "owner")

    def __init__(self, fn, target, other, name, owner):
        self.fn, self.target, self.other, self.name, self.owner = fn, target, other, name, owner


class Decide:
    """A value-dependent choice made inside chainrule (`registry.decide`), re-checked on replay."""
    __slots__ = ("fn", "args", "params", "value", "hoisted")

    def __init__(self, fn, args, params, value):
        self.fn, self.args, self.params, self.value = fn, args, params, value
        self.hoisted = False


class Backward:
    """One backward pass: seeds, then steps (rule calls and sums) in the engine's order, then
    the leaves' `.grad` (unless it was autograd.grad)."""
    __slots__ = ("steps", "leaves", "to_grad", "outs")

    def __init__(self):
        self.steps, self.leaves, self.to_grad, self.outs = [], [], True, {}


class Host:
    """A call replayed as is: an optimizer step, zero_grad, a schedule step, clipping."""
    __slots__ = ("fn", "args", "kwargs", "out", "name")

    def __init__(self, fn, args, kwargs, out, name):
        self.fn, self.args, self.kwargs, self.out, self.name = fn, args, kwargs, out, name


class SetAttr:
    """tensor.attr = value, an assignment the function made (`p.grad = None`)."""
    __slots__ = ("tensor", "attr", "value")

    def __init__(self, tensor, attr, value):
        self.tensor, self.attr, self.value = tensor, attr, value


# Backward micro-steps (all operate on slots)
class Seed:
    """The first gradient of an output: ones made with `xp` (its array module), or a copy of
    the given gradient."""
    __slots__ = ("out", "shape", "dtype", "source", "xp")

    def __init__(self, out, shape, dtype, source, xp=np):
        self.out, self.shape, self.dtype, self.source, self.xp = out, shape, dtype, source, xp


class Rule:
    __slots__ = ("out", "rule", "g", "y", "args", "params", "fit", "name", "i")

    def __init__(self, out, rule, g, y, args, params, fit, name, i):
        self.out, self.rule, self.g, self.y, self.args = out, rule, g, y, args
        self.params, self.fit, self.name, self.i = params, fit, name, i


class Sum:
    """out = a + b (a new array; mode "new") or a += b in place (mode "inplace")."""
    __slots__ = ("out", "a", "b", "mode", "scalar")

    def __init__(self, out, a, b, mode, scalar=False):
        self.out, self.a, self.b, self.mode, self.scalar = out, a, b, mode, scalar


class Scatter:
    """The engine's slice accumulation (getitem with a basic index): out = zeros (+ prev);
    out[index] += g."""
    __slots__ = ("out", "prev", "g", "index", "shape", "dtype", "cast", "fresh", "xp")

    def __init__(self, out, prev, g, index, shape, dtype, cast, fresh, xp=np):
        self.out, self.prev, self.g, self.index = out, prev, g, index
        self.shape, self.dtype, self.cast, self.fresh, self.xp = shape, dtype, cast, fresh, xp


# Parameter expressions: ("slot", id) | ("const", value) | ("tuple"/"list", [exprs])


# ---------------------------------------------------------------- the session

class Session:
    """Watches one call of `fn` and writes it down (see the module docstring)."""

    def __init__(self, fallback, scouted):
        self.fallback = fallback
        self.slots = []
        self.instrs = []
        self.by_id = {}            # id(array) -> slot id
        self.arrays = {}           # slot id -> array (during the capture only)
        self.owner_slots = {}      # id(array in a slot array's base chain) -> [slot ids]
        self.device_roots = {}     # id(memory root of a device slot array) -> [slot ids]
        self.keep = []             # arrays whose ids are keys of by_id
        self.node_instr = {}       # graph Node -> the Op that made it
        self.walked = set()        # nodes walked by a backward pass inside fn
        self.tracked = {}          # id(tensor) -> [tensor, data, grad] as last seen
        self.modules = {}          # id(module) -> module, in call order
        self.hosts = []            # objects whose methods were recorded host calls
        self.quiet = 0             # > 0 inside the engine or a host call: not recorded
        self.failed = None         # why the call cannot be captured (soft failure)
        self.scouted = scouted
        self.traced_tensors = []   # (tensor, original array, traced view)
        self.arg_tensors = {}      # id(tensor) -> input index
        self.leaves = []           # the inputs' structure, flattened (see `input`)
        self.rng = None            # the random generator's state after the last operation
        self._drew = False         # whether the operation being recorded drew numbers

    # ----- slots -----
    def new_slot(self, kind, array=None, **kw):
        slot = Slot(len(self.slots), kind, array, **kw)
        self.slots.append(slot)
        if array is not None:
            self.bind(array, slot.id)
        return slot

    def bind(self, array, sid):
        self.by_id[id(array)] = sid
        self.arrays[sid] = array
        self.keep.append(array)
        if not _on_host(array) and backend.is_array(array):
            root = backend.memory_root(array)
            self.device_roots.setdefault(id(root), []).append(sid)
            self.keep.append(root)
        a = array.base if isinstance(array, np.ndarray) else None
        while a is not None:
            self.owner_slots.setdefault(id(a), []).append(sid)
            self.keep.append(a)
            a = a.base if isinstance(a, np.ndarray) else None

    # ----- starting -----
    def begin(self, args, kwargs):
        """Trace the inputs and the known state; returns the (args, kwargs) fn is called with."""
        self.rng = _rng_state()
        self.top = (len(args), tuple(kwargs))
        for t in list(self.scouted):
            if isinstance(t, Tensor) and isinstance(t._data, np.ndarray) and \
                    (t._data.flags.writeable or t.requires_grad):
                self.trace_state(t)
        new_args = tuple(self.input(a) for a in args)
        new_kwargs = {k: self.input(v) for k, v in kwargs.items()}
        return new_args, new_kwargs

    def trace_state(self, t):
        if id(t) in self.tracked or id(t) in self.arg_tensors:
            return
        orig = t._data
        view = trace(orig, self)
        t._data = view
        self.traced_tensors.append((t, orig, view))
        self.new_slot("load", view, tensor=t, attr="data", pos=0, label=t.name or "")
        self.track(t)

    def input(self, value):
        """One argument: Tensors and arrays become input buffers; containers are walked."""
        if isinstance(value, Tensor):
            if id(value) in self.arg_tensors:
                self.leaves.append(("alias", self.arg_tensors[id(value)]))
                return value
            k = len(self.leaves)
            self.arg_tensors[id(value)] = k
            orig = value._data
            view = trace(orig, self)
            value._data = view
            self.traced_tensors.append((value, orig, view))
            self.leaves.append(("tensor", type(value), orig.shape, orig.dtype,
                                value.requires_grad, placement(orig)))
            self.new_slot("arg", view, arg=k, label=value.name or f"input {k}")
            self.track(value)
            return value
        if backend.is_array(value):
            k = len(self.leaves)
            view = trace(value, self)
            self.leaves.append(("array", type(value), value.shape, value.dtype))
            self.new_slot("arg", view, arg=k, label=f"input {k}")
            return view
        if type(value) in (list, tuple):
            self.leaves.append(("seq", type(value), len(value)))
            return type(value)(self.input(v) for v in value)
        if type(value) is dict:
            self.leaves.append(("dict", tuple(value)))
            return {k: self.input(v) for k, v in value.items()}
        if value is None or type(value) in (bool, int, float, str, bytes, complex):
            self.leaves.append(("value", type(value), value))
            return value
        self.leaves.append(("object", value))
        return value

    # ----- tracking tensors' data and grad -----
    def track(self, t):
        if id(t) not in self.tracked:
            self.tracked[id(t)] = [t, t._data, t.grad]

    def sync(self):
        """Record assignments fn made to tracked tensors since the last event
        (`p.grad = None`, `p._data = new`)."""
        for entry in self.tracked.values():
            t, data, grad = entry
            if t.grad is not grad:
                g = t.grad
                value = None if g is None else self.ref_tensor(g, "the assigned .grad")
                self.instrs.append(SetAttr(t, "grad", value))
                entry[2] = g
            if t._data is not data:
                value = self.ref_array(t._data, "the assigned .data")
                self.instrs.append(SetAttr(t, "data", value))
                entry[1] = t._data

    def after_event(self):
        """After a backward or host call: the .grad and .data it gave tracked tensors are
        read from them at this point of the replay."""
        pos = len(self.instrs)
        for entry in self.tracked.values():
            t, data, grad = entry
            if t.grad is not grad:
                g = t.grad
                if g is not None and id(g._data) not in self.by_id:
                    self.new_slot("load", g._data, tensor=t, attr="grad", pos=pos,
                                  label=f"{t.name or 'tensor'}.grad")
                entry[2] = g
            if t._data is not data:
                if id(t._data) not in self.by_id:
                    self.new_slot("load", t._data, tensor=t, attr="data", pos=pos,
                                  label=t.name or "")
                entry[1] = t._data

    # ----- resolving arrays and tensors to buffers -----
    def ref_tensor(self, t, where):
        arr = t._data
        sid = self.by_id.get(id(arr))
        if sid is not None:
            return sid
        if not _on_host(arr) and self.device_roots.get(id(backend.memory_root(arr))):
            return self.device_view_ref(arr, where)
        if traced_by(arr, self):
            sid = self.view_ref(arr)
            if sid is None:
                self.derived(where)
            return sid
        if isinstance(arr, np.ndarray) and not arr.flags.writeable and not t.requires_grad:
            # a read-only constant (Python numbers in x * 0.5 are cached as such)
            return self.new_slot("const", arr, value=arr).id
        # a tensor no recorded operation made: read by identity on every replay (state), or
        # a constant made inside fn (decided when the capture ends)
        slot = self.new_slot("load", arr, tensor=t, attr="data", pos=len(self.instrs),
                             label=t.name or "")
        if not _on_host(arr) or arr.flags.writeable:   # (device arrays have no such flag)
            slot.snapshot = arr.copy()
        self.track(t)
        return slot.id

    def ref_array(self, arr, where):
        sid = self.by_id.get(id(arr))
        if sid is not None:
            return ("slot", sid)
        if not _on_host(arr) and self.device_roots.get(id(backend.memory_root(arr))):
            return ("slot", self.device_view_ref(arr, where))
        if traced_by(arr, self):
            sid = self.view_ref(arr)
            if sid is None:
                self.derived(where)
            return ("slot", sid)
        return ("const", arr)

    def view_ref(self, arr):
        """A buffer holding exactly `arr`'s values when `arr` is a view of one (the same
        memory and layout, or a reshape of a contiguous buffer); None otherwise."""
        candidates = []
        a = arr.base
        while a is not None:
            if id(a) in self.by_id:
                candidates.append(self.by_id[id(a)])
            candidates += self.owner_slots.get(id(a), [])
            a = a.base if isinstance(a, np.ndarray) else None
        ptr = arr.__array_interface__["data"][0]
        for sid in candidates:
            b = self.arrays.get(sid)
            if b is None or b.dtype != arr.dtype or b.__array_interface__["data"][0] != ptr:
                continue
            if b.shape == arr.shape and b.strides == arr.strides:
                self.bind(arr, sid)
                return sid
            if (b.size == arr.size and arr.flags.c_contiguous and b.flags.c_contiguous):
                out = self.new_slot("op", arr)
                self.instrs.append(Op("view", _reshape, [sid], {"shape": ("const", arr.shape)},
                                      out.id, "reshape"))
                return out.id
        return None

    def device_view_ref(self, arr, where):
        """view_ref for a device array that shares a buffer's memory (device arrays are not
        traced, taint.trace): the buffer when `arr` is all of its memory, contiguous, in its
        dtype (itself, or a reshape of it: F.cross_entropy's labels.reshape(-1)); any other
        view of it cannot be told apart without addresses, and is refused as derived."""
        root = backend.memory_root(arr)
        for sid in self.device_roots[id(root)]:
            b = self.arrays[sid]
            if b.dtype == arr.dtype and b.nbytes == arr.nbytes == getattr(root, "nbytes", -1) \
                    and b.flags.c_contiguous and arr.flags.c_contiguous:
                if b.shape == arr.shape:
                    self.bind(arr, sid)
                    return sid
                out = self.new_slot("op", arr)
                self.instrs.append(Op("view", _reshape, [sid], {"shape": ("const", arr.shape)},
                                      out.id, "reshape"))
                return out.id
        self.derived(where)

    def ref_param(self, value, where):
        if backend.is_array(value):
            return self.ref_array(value, where)
        if isinstance(value, Tensor):
            return ("slot", self.ref_tensor(value, where))
        if type(value) in (tuple, list):
            parts = [self.ref_param(v, where) for v in value]
            if all(p[0] == "const" for p in parts):
                return ("const", value)
            return (type(value).__name__, parts)
        return ("const", value)

    def derived(self, where):
        raise self.error(
            f"{where} is an array computed from the step's inputs or state outside chainrule's "
            "recorded operations (NumPy on `.data`, or a conversion chainrule cannot see), so a "
            "replay would reuse this call's values")

    # ----- the hooks -----
    def on_op(self, kind, fn, inputs, params, result):
        if self.quiet or self.failed or taint.current() is not self:   # another thread's op
            return
        try:
            self._on_op(kind, fn, inputs, params, result)
        except NotCapturable:      # fallback=True: the call goes on eagerly, unrecorded
            pass

    def _on_op(self, kind, fn, inputs, params, result):
        self.check_rng(kind, fn, inputs, params)
        if kind == "apply" or kind == "compute":
            name = fn.name if kind == "apply" else getattr(fn, "__name__", "compute")
            where = f"an input of {name}"
            ins = [self.ref_tensor(t, where) for t in inputs]
            ps = {k: self.ref_param(v, f"the {k}= of {name}") for k, v in params.items()}
            out = result._data
            if not (type(out) is Traced and out._session is self):
                out = trace(out if backend.is_array(out) else np.asarray(out), self)
                result._data = out
                if result._node is not None:
                    result._node.out = out
            slot = self.new_slot("op", out)
            op = Op(kind, fn.forward if kind == "apply" else fn, ins, ps, slot.id, name,
                    prim=fn if kind == "apply" else None)
            op.random = self._drew
            self.instrs.append(op)
            if result._node is not None:
                self.node_instr[result._node] = op
        elif kind == "inplace":
            target, other = inputs
            name = params.get("op", "in-place update")
            tid = self.ref_tensor(target, f"the tensor updated by {name}")
            if isinstance(other, Tensor):
                oref = ("slot", self.ref_tensor(other, f"the operand of {name}"))
            else:
                oref = self.ref_param(other, f"the operand of {name}")
            self.slots[tid].mutated = True
            self.instrs.append(Inplace(fn, tid, oref, name, target))
        elif kind == "decide":
            name = getattr(fn, "__name__", "decide")
            refs = [self.ref_param(a, f"an argument of {name}") for a in inputs]
            self.instrs.append(Decide(fn, refs, dict(params), result))

    def saw_module(self, module):
        if not self.quiet and not self.failed:
            self.modules.setdefault(id(module), module)

    def value_read(self, what, writes=False):
        """A traced value read into Python (or, with writes, a traced array written outside
        chainrule's operations): CompileError naming the user's line, or with fallback=True
        the call goes on eagerly and the function runs eagerly from then on."""
        if self.failed:
            return
        where = _user_line()
        if self.fallback:
            self.failed = f"{what} at {where}"
            return
        if writes:
            raise CompileError(
                f"cr.compile: {what} at {where}. Move it outside the compiled function, or use "
                "cr.compile(fn, fallback=True) to run such a function eagerly.")
        raise CompileError(
            f"cr.compile: {what} at {where} reads a tensor's value while the function is being "
            "captured; a replay could not repeat a decision or a number taken from this call's "
            "data. Move it outside the compiled function (e.g. call .item() on what it "
            "returns), or use cr.compile(fn, fallback=True) to run such a function eagerly.")

    def error(self, what, where=True):
        what = f"{what} (at {_user_line()})" if where else what
        if self.fallback:
            self.failed = self.failed or what
            return NotCapturable(self.failed)
        return CompileError(
            f"cr.compile: {what}. Move that computation outside the compiled "
            "function or express it with tensor operations, or use cr.compile(fn, "
            "fallback=True) to run this function eagerly.")

    def fail_soft(self, why):
        if not self.failed:
            self.failed = why

    # ----- randomness -----
    def check_rng(self, kind, fn=None, inputs=(), params=None):
        """Random numbers may be drawn only by recorded `compute`s (dropout's mask) and host
        calls, which the replay repeats; a draw anywhere else would be frozen."""
        self._drew = False
        now = _rng_state()
        if now == self.rng:
            return
        if kind == "compute" and _redraws(fn, inputs, params, self.rng, now):
            self.rng, self._drew = now, True
            return
        self.rng = now
        raise self.error("random numbers were drawn outside chainrule's recorded operations "
                         "(a NumPy or cr.rand/cr.randn call inside the function); the replay "
                         "would reuse this call's draws. Draw them outside and pass them in")

    # ----- backward -----
    def backward(self, orig, outputs, grad_outputs, retain_graph, create_graph, capture):
        if self.quiet or self.failed:
            return orig(outputs, grad_outputs, retain_graph, create_graph, capture)
        if create_graph:
            self.fail_soft("backward(create_graph=True) (a gradient of a gradient) builds a "
                           "graph while it runs, which a replay cannot")
            return orig(outputs, grad_outputs, retain_graph, create_graph, capture)
        try:
            self.check_rng("backward")
            self.sync()
        except NotCapturable:
            return orig(outputs, grad_outputs, retain_graph, create_graph, capture)
        seeds = []
        for i, t in enumerate(outputs):
            if not isinstance(t, Tensor):
                return orig(outputs, grad_outputs, retain_graph, create_graph, capture)
            g = grad_outputs[i] if grad_outputs is not None else None
            if g is None:
                source = None
            elif isinstance(g, Tensor):
                source = ("slot", self.ref_tensor(g, "a backward gradient"))
            else:
                source = self.ref_param(backend.to_array(g, t.dtype), "a backward gradient")
            seeds.append((t, source))
        observed = []

        def watch(node, g, grads):
            observed.append((node, node.inputs, node.out, g, grads))

        self.quiet += 1
        try:
            with autograd.observe(watch):
                result = orig(outputs, grad_outputs, retain_graph, create_graph, capture)
        finally:
            self.quiet -= 1
        try:
            plan = self.plan_backward(seeds, observed, capture)
        except NotCapturable:
            return result
        self.instrs.append(plan)
        if capture is not None:
            for t, g in zip(capture, result):
                sid = plan.outs.get(id(t))
                if g is not None and sid is not None and id(g._data) not in self.by_id:
                    self.bind(g._data, sid)
        self.rng = _rng_state()
        self.after_event()
        return result

    def plan_backward(self, seeds, observed, capture):
        """The engine's walk over the observed nodes, as micro-steps on buffers."""
        bw = Backward()
        state = {}            # key -> [slot id, owned]
        leaf_order = {}       # id -> leaf tensor, in the order their first gradient arrived
        leaf_objects = {}     # id -> leaf tensor

        def key_of(t):
            # leaves by id: a tuple holding a Tensor would compare with Tensor.__eq__
            if t._node is not None:
                return ("n", t._node)
            leaf_objects[id(t)] = t
            return ("l", id(t))

        def add(key, sid, shape, host=True):
            prev = state.get(key)
            if key[0] == "l" and prev is None:
                leaf_order.setdefault(key[1], leaf_objects[key[1]])
            if prev is None:
                state[key] = [sid, False]
            elif prev[1]:
                bw.steps.append(Sum(prev[0], prev[0], sid, "inplace"))
            else:
                out = self.new_slot("acc", None, shape=shape, dtype=self.slots[sid].dtype)
                # (0-d NumPy sums are scalars, made arrays again; a device's are 0-d arrays)
                bw.steps.append(Sum(out.id, prev[0], sid, "new", scalar=shape == () and host))
                state[key] = [out.id, True]

        for t, source in seeds:
            shape, dtype = t._data.shape, t._data.dtype
            out = self.new_slot("acc", None, shape=shape, dtype=dtype)
            bw.steps.append(Seed(out.id, shape, dtype, source, backend.xp_of(t._data)))
            add(key_of(t), out.id, shape, _on_host(t._data))
        wanted = {}
        if capture is not None:
            for t in capture:
                if t._node is not None:
                    wanted[t._node] = None
        for node, inputs, y, g, grads in observed:
            self.walked.add(node)
            if node.retained is not None:
                self.fail_soft("retain_grad() on a tensor inside the function (the replay "
                               "makes no intermediate tensors to hold it)")
            op = self.node_instr.get(node)
            entry = state.pop(("n", node), None)
            if op is None or entry is None or inputs is None:
                raise self.error(f"the backward pass reached {node.prim.name}, which was not "
                                 "recorded in this call (a graph built before the call?)")
            gsid = entry[0]
            if node in wanted:
                wanted[node] = gsid
            prim = node.prim
            index = prim.scatter(node.params) if prim.scatter is not None else None
            if index is not None:
                t = inputs[0]
                if t.requires_grad:
                    key = key_of(t)
                    if key[0] == "l":
                        leaf_order.setdefault(id(t), t)
                    prev = state.get(key)
                    x = self.arrays.get(op.inputs[0])
                    shape, dtype = x.shape, x.dtype
                    if prev is None or not prev[1]:
                        out = self.new_slot("acc", None, shape=shape, dtype=dtype)
                        bw.steps.append(Scatter(out.id, prev[0] if prev else None, gsid, index,
                                                shape, dtype, g.dtype != dtype, True,
                                                backend.xp_of(x)))
                        state[key] = [out.id, True]
                    else:
                        bw.steps.append(Scatter(prev[0], None, gsid, index, shape, dtype,
                                                g.dtype != dtype, False))
                continue
            kernels = prim.kernels
            for i, t in enumerate(inputs):
                gi = grads[i]
                if gi is None:
                    continue
                rule = kernels(i) if prim.variadic else kernels[i]
                x = t._data
                raw = rule(g, y, *[u._data for u in inputs], **node.params)
                fit = not backend.is_array(raw) or raw.shape != x.shape or raw.dtype != x.dtype
                out = self.new_slot("acc", None, shape=x.shape, dtype=x.dtype)
                bw.steps.append(Rule(out.id, rule, gsid, op.out, list(op.inputs), op.params,
                                     op.inputs[i] if fit else None, prim.name, i))
                add(key_of(t), out.id, x.shape, _on_host(x))
        if capture is None:
            bw.leaves = [(t, state[("l", id(t))][0]) for t in leaf_order.values()
                         if ("l", id(t)) in state]
        else:
            bw.to_grad = False
            bw.leaves = []
            outs = {}
            for t in capture:
                if t._node is not None:
                    sid = wanted.get(t._node)
                else:
                    e = state.get(("l", id(t)))
                    sid = e[0] if e else None
                if sid is not None:
                    outs[id(t)] = sid
            bw.outs = outs
        return bw

    # ----- host calls -----
    def host_call(self, fn, name, args, kwargs):
        if self.quiet or self.failed:
            return fn(*args, **kwargs)
        if kwargs.get("closure") is not None or (name.endswith(".step") and len(args) > 1
                                                  and callable(args[1])):
            self.fail_soft(f"{name}(closure) re-evaluates the model inside the optimizer")
            return fn(*args, **kwargs)
        try:
            self.check_rng("host")
            self.sync()
        except NotCapturable:
            return fn(*args, **kwargs)
        args = tuple(_materialize(a) for a in args)
        kwargs = {k: _materialize(v) for k, v in kwargs.items()}
        arg_refs = [self.host_arg(a) for a in args]
        kw_refs = {k: self.host_arg(v) for k, v in kwargs.items()}
        self.quiet += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            self.quiet -= 1
        out = None
        if isinstance(result, Tensor):
            out = self.new_slot("host", result._data).id
        if args and not isinstance(args[0], (Tensor, list, tuple)):
            self.hosts.append(args[0])
        if args and "." in name and not isinstance(args[0], (Tensor, list, tuple)):
            name = f"{type(args[0]).__name__}.{name.rsplit('.', 1)[1]}"
        self.instrs.append(Host(fn, arg_refs, kw_refs, out, name))
        self.rng = _rng_state()
        self.after_event()
        return result

    def host_arg(self, value):
        if isinstance(value, Tensor):
            sid = self.by_id.get(id(value._data))
            if sid is not None and self.slots[sid].kind in ("op", "acc", "arg", "host") \
                    and id(value) not in self.tracked:
                return ("wrap", sid)
            return ("obj", value)
        if type(value) in (list, tuple):
            return (type(value).__name__, [self.host_arg(v) for v in value])
        return ("obj", value)

    # ----- the end -----
    def output(self, value):
        """The returned structure as an expression over buffers."""
        if isinstance(value, Tensor):
            if id(value) in self.arg_tensors:
                return ("input", self.arg_tensors[id(value)])
            if id(value) in self.tracked and self.by_id.get(id(value._data)) is not None and \
                    self.slots[self.by_id[id(value._data)]].kind == "load":
                return ("obj", value)
            if value.requires_grad and value._node is not None and \
                    value._node not in self.walked:
                self.fail_soft("it returns a tensor that still has a graph (requires_grad, "
                               "no backward inside the function), and a replayed result has "
                               "none; call it under cr.no_grad() for inference, or compile "
                               "the whole step including backward()")
            return ("wrap", self.ref_tensor(value, "a returned tensor"))
        if type(value) in (list, tuple):
            return (type(value).__name__, [self.output(v) for v in value])
        if type(value) is dict:
            return ("dict", [(k, self.output(v)) for k, v in value.items()])
        if isinstance(value, np.ndarray):
            if traced_by(value, self):
                raise self.error("the function returns a NumPy array computed from tensors "
                                 "(a replay would return this call's values again); return "
                                 "the tensor instead", where=False)
            return ("const", value)
        if isinstance(value, np.generic):
            return ("const", value)
        return ("const", value)

    def restore(self):
        """Give every tensor its own arrays back (plain, untraced)."""
        for t, orig, view in self.traced_tensors:
            if t._data is view:
                t._data = orig
        for t, _, _ in self.tracked.values():
            _untrace(t)
        for obj in self.hosts:
            state = getattr(obj, "state", None)
            if isinstance(state, dict):
                for per in state.values():
                    if isinstance(per, dict):
                        for k, v in per.items():
                            if type(v) is Traced:
                                per[k] = v.view(np.ndarray)


def _on_host(array):
    return isinstance(array, np.ndarray)


def placement(array):
    """Where a replay's guard requires an array in this one's place to be: None for the host
    (a NumPy array), else its device (a cr.device)."""
    return None if isinstance(array, np.ndarray) else backend.device_of(array)


def _untrace(t):
    if type(t._data) is Traced:
        t._data = t._data.view(np.ndarray)
    g = t.grad
    if g is not None and type(g._data) is Traced:
        g._data = g._data.view(np.ndarray)


def untrace_result(value):
    """The returned structure with plain arrays (the capture's own call returns it)."""
    if isinstance(value, Tensor):
        _untrace(value)
    elif type(value) in (list, tuple):
        for v in value:
            untrace_result(v)
    elif type(value) is dict:
        for v in value.values():
            untrace_result(v)
    return value


def _reshape(x, shape):
    return x.reshape(shape)


def _materialize(value):
    if isinstance(value, (types.GeneratorType, map, filter, zip)):
        return list(value)
    return value


def _rng_state():
    gen = backend.rng()
    return (id(gen), gen.bit_generator.state)


def _redraws(fn, inputs, params, before, after):
    """Whether running `fn` from the generator state `before` ends at `after` (the draws
    between two observations were all fn's)."""
    real = backend.rng()
    if before[0] != id(real) or after[0] != id(real):
        return False
    gen = np.random.Generator(type(real.bit_generator)())
    gen.bit_generator.state = before[1]
    saved = backend._rng
    backend._rng = gen
    try:
        fn(*[t._data for t in inputs], **(params or {}))
    except Exception:
        return False
    finally:
        backend._rng = saved
    return gen.bit_generator.state == after[1]


# chainrule's own examples count as user code (explain's static-vs-dynamic example)
_EXAMPLES = (_PACKAGE_DIR + "static/example.py",)


def _user_line():
    """'file:line (code)' of the innermost frame outside chainrule (the user's line)."""
    f = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if (not name.startswith(_PACKAGE_DIR) or name in _EXAMPLES) and \
                "/numpy/" not in name and not name.startswith("<"):
            try:
                import linecache
                line = linecache.getline(name, f.f_lineno).strip()
            except Exception:
                line = ""
            return f"{name}:{f.f_lineno}" + (f" ({line})" if line else "")
        f = f.f_back
    return "an unknown line"


# ---------------------------------------------------------------- wrappers while capturing

def _host_wrapper(fn, name):
    def recorded(*args, **kwargs):
        session = taint.current()
        if session is None:
            return fn(*args, **kwargs)
        return session.host_call(fn, name, args, kwargs)
    recorded.__wrapped__ = fn
    recorded.__name__ = getattr(fn, "__name__", "recorded")
    recorded.__qualname__ = getattr(fn, "__qualname__", recorded.__name__)
    recorded.__doc__ = getattr(fn, "__doc__", None)
    return recorded


def _backward_wrapper(orig):
    def run_backward(outputs, grad_outputs=None, retain_graph=False, create_graph=False,
                     capture=None):
        session = taint.current()
        if session is None:
            return orig(outputs, grad_outputs, retain_graph, create_graph, capture)
        return session.backward(orig, outputs, grad_outputs, retain_graph, create_graph,
                                capture)
    return run_backward


def _module_call_wrapper(orig):
    def __call__(self, *args, **kwargs):
        session = taint.current()
        if session is not None:
            session.saw_module(self)
        return orig(self, *args, **kwargs)
    return __call__


def _numpy_wrapper(orig):
    def numpy(self):
        session = taint.current()
        if session is not None and traced_by(self._data, session) and not taint.trusted():
            session.value_read(".numpy()")
        return orig(self)
    return numpy


def _wrap_keeping_trace(array):
    """Tensor._wrap that keeps a Traced array as it is (NumPy's asarray would strip it)."""
    t = object.__new__(Tensor)
    t._data = array if backend.is_array(array) else np.asarray(array)
    t.grad = None
    t.requires_grad = False
    t._node = None
    t.name = None
    t._vc = [0]
    t._view = None
    return t


def _to_array_wrapper(orig):
    def to_array(data, dtype=None):
        session = taint.current()
        if session is not None and isinstance(data, np.ndarray) and traced_by(data, session) \
                and not taint.trusted() and not session.failed and not session.quiet:
            if id(data) not in session.by_id:
                try:
                    raise session.error("a new tensor made from an array computed from the "
                                        "step's inputs or state (cr.tensor(x.data ...))")
                except NotCapturable:
                    pass
        return orig(data, dtype)
    return to_array


class Patches:
    """The wrappers installed for the length of one capture, and taken away after."""

    def __init__(self):
        self.undo = []

    def set(self, owner, name, value):
        had = name in vars(owner) if isinstance(owner, type) else hasattr(owner, name)
        old = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name)
        self.undo.append((owner, name, had, old))
        setattr(owner, name, value)

    def install(self, session):
        from .. import nn, optim
        from ..nn.module import Module
        from ..optim import clip, lr_scheduler
        from ..optim.optimizer import Optimizer
        self.set(registry, "_wrap", _wrap_keeping_trace)
        self.set(Tensor, "_wrap", staticmethod(_wrap_keeping_trace))
        self.set(autograd, "run_backward", _backward_wrapper(autograd.run_backward))
        self.set(Tensor, "numpy", _numpy_wrapper(Tensor.numpy))
        self.set(backend, "to_array", _to_array_wrapper(backend.to_array))
        self.set(Module, "__call__", _module_call_wrapper(Module.__call__))
        for base, names in ((Optimizer, ("step", "zero_grad")),
                            (lr_scheduler.LRScheduler, ("step",)), (Module, ("zero_grad",))):
            for cls in _subclasses(base):
                for name in names:
                    if name in vars(cls):
                        fn = vars(cls)[name]
                        self.set(cls, name, _host_wrapper(fn, f"{cls.__name__}.{name}"))
        for fname in ("clip_grad_norm_", "clip_grad_value_"):
            fn = getattr(clip, fname)
            wrapped = _host_wrapper(fn, fname)
            for module in (clip, optim, getattr(nn, "utils", None)):
                if module is not None and getattr(module, fname, None) is fn:
                    self.set(module, fname, wrapped)
        registry.op_hooks.append(session.on_op)

    def remove(self, session):
        if session.on_op in registry.op_hooks:
            registry.op_hooks.remove(session.on_op)
        for owner, name, had, old in reversed(self.undo):
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        self.undo = []


def _subclasses(cls):
    out, todo = [], [cls]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


def trusted_code():
    """The code objects inside which value reads are chainrule's own business."""
    from ..ops import methods
    codes = {registry.apply.__code__, registry.compute.__code__, registry.decide.__code__,
             methods._inplace.__code__, autograd.Node.vjp.__code__,
             autograd.run_backward.__code__, autograd._set_grad.__code__}
    for cls in (autograd._Walk,):
        for v in vars(cls).values():
            if isinstance(v, types.FunctionType):
                codes.add(v.__code__)
    codes.add(_host_wrapper(len, "").__code__)
    codes.add(Session.host_call.__code__)
    codes.add(Session.backward.__code__)
    codes.add(Session.plan_backward.__code__)
    codes.add(_redraws.__code__)
    from ..tensor import Tensor as T
    codes.add(T.__repr__.__code__)
    return codes
