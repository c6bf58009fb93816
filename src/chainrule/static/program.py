"""The captured program: guards, straight-line Python generated from the instructions, and
its rendering as text (`step.graph()`).

The replay of a variant is one generated function. It checks the guards (inputs' shapes,
dtypes and requires_grad, grad mode, the modules' train/eval mode and parameters, the state's
shapes, the value-dependent choices that read only inputs) and returns MISS when one fails;
otherwise it runs the forward through each primitive's `forward`, each backward step through
the primitive's first-order rule, writes `.grad` through the engine's own `_set_grad`, calls
the recorded optimizer methods, and wraps the returned arrays in Tensors. No Node, no graph,
no dispatch: each instruction is one line of Python calling the very function the eager path
calls, so every rule's data-dependent branches (pow's zero checks, the finite max shift)
still run on the new data. Buffers that are large are freed (`del`) after their last use.
"""
import math
import threading
import weakref

from .. import autograd, backend
from .. import grad_mode as _grad_mode
from ..errors import CompileError
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor
from . import capture as C

np = backend.np

MISS = object()                      # what a variant returns when a guard fails
FREE_BYTES = 1 << 16                 # buffers at least this large are freed after last use


def _fit(g, x):
    return autograd._fit(g, x)


# The engine's end of a backward pass (autograd.run_backward's last lines), which a replay
# mirrors: `.grad` written through the engine's own _set_grad under its lock, then this
# thread's end-of-pass watchers (observe(done=...)) told which leaves got one.
_LEAF_LOCK = getattr(autograd, "_leaf_lock", None) or threading.Lock()
_thread_finishers = getattr(autograd, "_thread_finishers", lambda: ())
_grad_enabled = getattr(_grad_mode, "grad_enabled", is_grad_enabled)   # one C call


def _grads_set(leaves):
    for done in list(_thread_finishers()):
        done(leaves)


def _grads_done():
    """autograd.grad's end-of-pass watchers (no leaf got a .grad)."""
    for done in list(_thread_finishers()):
        done([])


def _literal(v):
    """Python source for a constant when it is a plain literal, else None."""
    if v is None or type(v) in (bool, int, str):
        return repr(v)
    if type(v) is float and math.isfinite(v):
        return repr(v)
    if type(v) is tuple:
        parts = [_literal(x) for x in v]
        if all(p is not None for p in parts):
            return "(" + "".join(p + ", " for p in parts) + ")"
    return None


class Program:
    """One captured variant: instructions over buffers, its guards, its generated code."""

    def __init__(self, session, out, name):
        self.name = name
        self.slots = session.slots
        self.instrs = session.instrs
        self.leaves = session.leaves
        self.out = out
        self.modules = list(session.modules.values())
        self.grad_mode = is_grad_enabled()
        self.ns = {}
        self.names = {}
        self._top = session.top
        self.arg_ids = dict(session.arg_tensors)
        self._producer = {i.out: i for i in self.instrs if isinstance(i, C.Op)}
        self._positions = {id(ins): i for i, ins in enumerate(self.instrs)}
        self._finalize_tensors(session)
        self._hoist()
        self._eliminate()
        self._collect_state()
        self.source = self._generate()
        code = compile(self.source, f"<cr.compile {name}>", "exec")
        exec(code, self.ns)
        self.run = self.ns["run"]
        self.why = self.ns["why"]

    # ----- after the capture: which tensors are state, which were made inside fn -----
    def _finalize_tensors(self, session):
        for slot in self.slots:
            if slot.kind == "load":
                slot.tensor_ref = weakref.ref(slot.tensor)
                slot.tensor = None
        for ins in self.instrs:
            if isinstance(ins, C.Inplace):
                ins.owner = weakref.ref(ins.owner)
            elif isinstance(ins, C.SetAttr):
                ins.tensor = weakref.ref(ins.tensor)
            elif isinstance(ins, C.Backward):
                ins.leaves = [(weakref.ref(t), sid) for t, sid in ins.leaves]
        session.tracked.clear()
        session.node_instr.clear()
        session.traced_tensors = []
        # tensors the function made and dropped are constants (copied when it updates them)
        for slot in self.slots:
            if slot.kind != "load":
                continue
            t = slot.tensor_ref()
            if t is None:
                slot.persistent = False
                slot.value = slot.snapshot if slot.mutated else None
                continue
            slot.persistent = True
            slot.tensor = t
            slot.snapshot = None
        self._consts_from_dead_loads(session)

    def _collect_state(self):
        """The state tensors the program reads: their shape, dtype, requires_grad are guarded."""
        self.state = {}                          # id(tensor) -> (tensor, shape, dtype, rg)
        for slot in self.slots:
            if slot.kind == "load" and slot.attr == "data" and slot.id in self.used:
                t = slot.tensor
                if id(t) not in self.arg_ids and id(t) not in self.state:
                    self.state[id(t)] = (t, slot.shape, slot.dtype, t.requires_grad)
        for ins in self.instrs:
            if isinstance(ins, C.Backward):
                for ref, _ in ins.leaves:
                    t = self._tensor_of(ref)
                    if t is not None and id(t) not in self.arg_ids and id(t) not in self.state:
                        self.state[id(t)] = (t, t._data.shape, t._data.dtype, t.requires_grad)

    def _consts_from_dead_loads(self, session):
        for slot in self.slots:
            if slot.kind == "load" and not slot.persistent:
                arr = session.arrays.get(slot.id)
                slot.kind = "const"
                if slot.value is None:
                    slot.value = arr.view(np.ndarray) if isinstance(arr, np.ndarray) else arr
                    slot.mutated = False

    def _tensor_of(self, ref):
        return ref() if isinstance(ref, weakref.ref) else ref

    # ----- value-dependent choices that read only inputs are checked before running -----
    def _hoist(self):
        written = set()
        for ins in self.instrs:
            if isinstance(ins, C.Inplace):
                written.add(ins.target)
            if isinstance(ins, C.Decide):
                ok = True
                for a in ins.args:
                    if a[0] == "slot":
                        src = self._input_expr(a[1])
                        if src is None or a[1] in written:
                            ok = False
                    elif a[0] != "const":
                        ok = False
                ins.hoisted = ok

    def _input_expr(self, sid):
        """Source reading buffer `sid` straight from the arguments, when it is an input (or a
        reshape of one); else None."""
        slot = self.slots[sid]
        if slot.kind == "arg":
            k = slot.arg
            return f"a{k}._data" if self.leaves[k][0] == "tensor" else f"a{k}"
        if slot.kind == "op":
            op = self._producer.get(sid)
            if op is not None and op.kind == "view":
                inner = self._input_expr(op.inputs[0])
                if inner is not None:
                    return f"{inner}.reshape({op.params['shape'][1]!r})"
        return None

    # ----- dead-code elimination: pure operations whose results nobody reads -----
    def _eliminate(self):
        used = set()
        self._used_expr(self.out, used)
        keep = []
        for ins in reversed(self.instrs):
            if isinstance(ins, C.Op):
                if ins.out in used or ins.random:
                    used.update(ins.inputs)
                    for e in ins.params.values():
                        self._used_expr(e, used)
                    keep.append(ins)
                continue
            keep.append(ins)
            if isinstance(ins, C.Inplace):
                used.add(ins.target)
                self._used_expr(ins.other, used)
            elif isinstance(ins, C.Decide):
                for a in ins.args:
                    self._used_expr(a, used)
            elif isinstance(ins, C.Host):
                for a in ins.args:
                    self._used_expr(a, used)
                for a in ins.kwargs.values():
                    self._used_expr(a, used)
            elif isinstance(ins, C.SetAttr):
                if ins.value is not None:
                    self._used_expr(ins.value if isinstance(ins.value, tuple)
                                    else ("slot", ins.value), used)
            elif isinstance(ins, C.Backward):
                for step in ins.steps:
                    if isinstance(step, C.Rule):
                        used.update([step.g, step.y] + list(step.args))
                        if step.fit is not None:
                            used.add(step.fit)
                        for e in step.params.values():
                            self._used_expr(e, used)
                    elif isinstance(step, C.Seed) and step.source is not None:
                        self._used_expr(step.source, used)
                    elif isinstance(step, C.Sum):
                        used.update([step.a, step.b])
                    elif isinstance(step, C.Scatter):
                        used.add(step.g)
                        if step.prev is not None:
                            used.add(step.prev)
            if isinstance(ins, C.Backward):
                used.update(sid for _, sid in ins.leaves)
        self.instrs = keep[::-1]
        self.used = used

    def _used_expr(self, e, used):
        if e is None:
            return
        kind = e[0]
        if kind in ("slot", "wrap"):
            used.add(e[1])
        elif kind in ("tuple", "list"):
            for x in e[1]:
                self._used_expr(x, used)
        elif kind == "dict":
            for _, x in e[1]:
                self._used_expr(x, used)

    # ----- code generation -----
    def _name(self, obj, prefix):
        key = (prefix, id(obj))
        name = self.names.get(key)
        if name is None:
            name = f"{prefix}{len(self.names)}"
            self.names[key] = name
            self.ns[name] = obj
        return name

    def _on(self, where):
        """The guard that the array `d` is where the capture saw it (C.placement)."""
        if where is None:
            return "isinstance(d, NP.ndarray)"
        return f"DEVICE_OF(d) == {self._name(where, 'V')}"

    @staticmethod
    def _on_text(where):
        return "" if where is None else f", on {where}"

    def _module(self, xp):
        """The name of an array module in the source: NP for NumPy, X<n> for a device's."""
        return "NP" if xp is np else self._name(xp, "X")

    def _const(self, v):
        lit = _literal(v)
        return lit if lit is not None else self._name(v, "K")

    def _expr(self, e):
        kind = e[0]
        if kind == "slot":
            return self.v(e[1])
        if kind == "const":
            return self._const(e[1])
        if kind == "wrap":
            return f"TW({self.v(e[1])})"
        if kind == "obj":
            v = e[1]
            if isinstance(v, Tensor):
                k = self.arg_ids.get(id(v))
                if k is not None:
                    return f"a{k}"
            return self._const(v)
        if kind == "input":
            return f"a{e[1]}"
        if kind == "tuple":
            return "(" + "".join(self._expr(x) + ", " for x in e[1]) + ")"
        if kind == "list":
            return "[" + ", ".join(self._expr(x) for x in e[1]) + "]"
        if kind == "dict":
            return "{" + ", ".join(f"{k!r}: {self._expr(x)}" for k, x in e[1]) + "}"
        raise AssertionError(e)

    def v(self, sid):
        """The name a buffer is read by: a constant's own name, else its variable."""
        slot = self.slots[sid]
        if slot.kind == "const" and not slot.mutated:
            return self._name(slot.value, "C")
        return f"b{sid}"

    def _call(self, fname, args, params):
        parts = list(args) + [f"{k}={self._expr(v)}" for k, v in params.items()]
        return f"{fname}({', '.join(parts)})"

    def _owner(self, t):
        """Source naming tensor `t` at replay (an argument or a state tensor), or None."""
        if t is None:
            return None
        k = self.arg_ids.get(id(t))
        if k is not None:
            return f"a{k}"
        return self._name(t, "S")

    def _generate(self):
        ns = self.ns
        ns.update(MISS=MISS, TW=Tensor._wrap, NP=np, FIT=_fit, SG=autograd._set_grad,
                  LEAF_LOCK=_LEAF_LOCK, TFIN=_thread_finishers, GRADS_SET=_grads_set,
                  GDONE=_grads_done, GE=_grad_enabled, CHANGED=_changed,
                  ADD=np.add, DEVICE_OF=backend.device_of)
        guard = self._guards()
        body = self._body()
        lines = ["def run(args, kwargs):"]
        lines += ["    " + s for s, _ in guard]
        lines += ["    " + s for s in body]
        lines += ["", "def why(args, kwargs):"]
        for stmt, desc in guard:
            if desc is None:
                lines.append("    " + stmt)
            else:
                cond = stmt[len("if not ("):-len("): return MISS")]
                lines.append(f"    if not ({cond}): return {desc!r}")
        lines.append("    return None")
        return "\n".join(lines) + "\n"

    def _guards(self):
        """[(statement, description or None)]: `if not (...): return MISS` checks."""
        out = []

        def check(cond, desc):
            out.append((f"if not ({cond}): return MISS", desc))

        leaves = iter(enumerate(self.leaves))
        top_args, top_kwargs = self._top
        check(f"len(args) == {top_args} and len(kwargs) == {len(top_kwargs)}",
              f"the call passes {top_args} positional and {len(top_kwargs)} keyword arguments")

        def walk(expr, label):
            k, leaf = next(leaves)
            kind = leaf[0]
            if kind == "tensor":
                _, cls, shape, dtype, rg, where = leaf
                out.append((f"a{k} = {expr}", None))
                D = self._name(dtype, "D")
                check(f"type(a{k}) is {self._name(cls, 'T')} and (d := a{k}._data).shape == "
                      f"{shape!r} and (d.dtype is {D} or d.dtype == {D}) and "
                      f"a{k}.requires_grad is {rg!r} and {self._on(where)}",
                      f"{label} is a {cls.__name__} of shape {shape}, dtype {dtype}, "
                      f"requires_grad={rg}{self._on_text(where)}")
            elif kind == "array":
                _, cls, shape, dtype = leaf
                out.append((f"a{k} = {expr}", None))
                D = self._name(dtype, "D")
                check(f"type(a{k}) is {self._name(cls, 'T')} and a{k}.shape == {shape!r} and "
                      f"(a{k}.dtype is {D} or a{k}.dtype == {D})",
                      f"{label} is an array of shape {shape}, dtype {dtype}")
            elif kind == "seq":
                _, cls, n = leaf
                out.append((f"q{k} = {expr}", None))
                check(f"type(q{k}) is {cls.__name__} and len(q{k}) == {n}",
                      f"{label} is a {cls.__name__} of {n} items")
                for i in range(n):
                    walk(f"q{k}[{i}]", f"{label}[{i}]")
            elif kind == "dict":
                keys = leaf[1]
                out.append((f"q{k} = {expr}", None))
                check(f"type(q{k}) is dict and tuple(q{k}) == {self._const(keys)}",
                      f"{label} is a dict with keys {list(keys)}")
                for key in keys:
                    walk(f"q{k}[{key!r}]", f"{label}[{key!r}]")
            elif kind == "value":
                _, cls, v = leaf
                check(f"type({expr}) is {self._name(cls, 'T')} and {expr} == {self._const(v)}",
                      f"{label} == {v!r}")
            elif kind == "object":
                check(f"{expr} is {self._name(leaf[1], 'O')}", f"{label} is the same object")
            elif kind == "alias":
                out.append((f"a{k} = {expr}", None))
                check(f"a{k} is a{leaf[1]}", f"{label} is the same tensor as before")

        for i in range(top_args):
            walk(f"args[{i}]", f"argument {i}")
        for name in top_kwargs:
            walk(f"kwargs.get({name!r})", f"keyword argument {name!r}")
        check(f"GE() is {self.grad_mode!r}", f"grad mode is {'on' if self.grad_mode else 'off'}")
        for m in self.modules:
            M = self._name(m, "M")
            check(f"{M}.training is {m.training!r}",
                  f"{m.layer_path() if hasattr(m, 'layer_path') else type(m).__name__} is in "
                  f"{'train' if m.training else 'eval'} mode")
            for store in ("_parameters", "_buffers", "_modules"):
                for key, v in getattr(m, store, {}).items():
                    if v is not None:
                        check(f"{M}.{store}.get({key!r}) is {self._name(v, 'O')}",
                              f"{type(m).__name__}.{key} is the same object (not replaced)")
        for t, shape, dtype, rg in self.state.values():
            S = self._name(t, "S")
            D = self._name(dtype, "D")
            label = t.name or f"a state tensor of shape {shape}"
            where = C.placement(t._data)
            check(f"(d := {S}._data).shape == {shape!r} and (d.dtype is {D} or d.dtype == {D}) "
                  f"and {S}.requires_grad is {rg!r} and {self._on(where)}",
                  f"{label} has shape {shape}, dtype {dtype}, requires_grad={rg}"
                  f"{self._on_text(where)}")
        for j, ins in enumerate(self.instrs):
            if isinstance(ins, C.Decide) and ins.hoisted:
                args = [self._input_expr(a[1]) if a[0] == "slot" else self._expr(a)
                        for a in ins.args]
                F = self._name(ins.fn, "F")
                call = self._call(F, args, {k: ("const", v) for k, v in ins.params.items()})
                check(f"{call} == {self._const(ins.value)}",
                      f"{getattr(ins.fn, '__name__', 'a check')}(...) is still "
                      f"{ins.value!r} for these inputs")
        return out

    def _body(self):
        lines = []
        reads = []           # per line: the buffers it reads
        # inputs
        for slot in self.slots:
            if slot.kind == "arg" and slot.id in self.used:
                k = slot.arg
                src = f"a{k}._data" if self.leaves[k][0] == "tensor" else f"a{k}"
                lines.append(f"b{slot.id} = {src}")
                reads.append(())
            elif slot.kind == "const" and slot.id in self.used and slot.mutated:
                lines.append(f"b{slot.id} = {self._name(slot.value, 'C')}.copy()")
                reads.append(())
        loads = {}
        for slot in self.slots:
            if slot.kind == "load" and slot.id in self.used:
                loads.setdefault(slot.pos, []).append(slot)
        order = self._positions     # loads say before which original instruction they run

        def emit_loads(upto):
            for pos in sorted(p for p in list(loads) if p <= upto):
                for slot in loads.pop(pos):
                    S = self._owner(slot.tensor)
                    src = f"{S}._data" if slot.attr == "data" else f"{S}.grad._data"
                    lines.append(f"b{slot.id} = {src}")
                    reads.append(())

        for ins in self.instrs:
            emit_loads(order[id(ins)])
            start = len(lines)
            self._emit(ins, lines)
            reads.extend(self._reads(ins, lines[start:]))
        emit_loads(float("inf"))
        ret = self._expr(self.out)
        lines.append(f"return {ret}")
        reads.append(self._slots_in(self.out))
        return self._with_frees(lines, reads)

    def _emit(self, ins, lines):
        if isinstance(ins, C.Op):
            F = self._name(ins.fn, "F")
            lines.append(f"b{ins.out} = " + self._call(F, [self.v(s) for s in ins.inputs],
                                                        ins.params))
        elif isinstance(ins, C.Inplace):
            U = self._name(ins.fn, "U")
            lines.append(f"{U}(b{ins.target}, {self._expr(ins.other)})")
            owner = self._owner(self._tensor_of(ins.owner)) if self._live(ins.owner) else None
            if owner is not None:
                lines.append(f"{owner}._version += 1")
        elif isinstance(ins, C.Decide):
            if not ins.hoisted:
                F = self._name(ins.fn, "F")
                call = self._call(F, [self._expr(a) for a in ins.args],
                                  {k: ("const", v) for k, v in ins.params.items()})
                lines.append(f"if {call} != {self._const(ins.value)}: "
                             f"CHANGED({getattr(ins.fn, '__name__', 'decide')!r})")
        elif isinstance(ins, C.Backward):
            self._emit_backward(ins, lines)
        elif isinstance(ins, C.Host):
            H = self._name(ins.fn, "H")
            call = f"{H}({', '.join([self._expr(a) for a in ins.args] + [f'{k}={self._expr(v)}' for k, v in ins.kwargs.items()])})"
            if ins.out is not None and ins.out in self.used:
                lines.append(f"b{ins.out} = {call}._data")
            else:
                lines.append(call)
        elif isinstance(ins, C.SetAttr):
            t = self._tensor_of(ins.tensor)
            if t is None:
                return
            S = self._owner(t)
            if ins.value is None:
                lines.append(f"{S}.{ins.attr} = None")
            else:
                e = ins.value if isinstance(ins.value, tuple) else ("slot", ins.value)
                src = self._expr(e)
                lines.append(f"{S}.{ins.attr} = TW({src})" if ins.attr == "grad" else
                             f"{S}.{ins.attr} = {src}")

    def _live(self, ref):
        return self._tensor_of(ref) is not None

    def _emit_backward(self, bw, lines):
        for step in bw.steps:
            if isinstance(step, C.Seed):
                X = self._module(step.xp)
                if step.source is None:
                    D = self._name(step.dtype, "D")
                    src = (f"{X}.ones({step.shape!r}, dtype={D})" if step.shape else
                           f"{X}.array(1, dtype={D})")
                elif step.source[0] == "slot":
                    src = f"{self.v(step.source[1])}.copy()"
                else:
                    src = f"{X}.array({self._expr(step.source)})"
                lines.append(f"b{step.out} = {src}")
            elif isinstance(step, C.Rule):
                R = self._name(step.rule, "R")
                args = [self.v(s) for s in [step.g, step.y] + list(step.args)]
                lines.append(f"b{step.out} = " + self._call(R, args, step.params))
                if step.fit is not None:
                    lines.append(f"b{step.out} = FIT(b{step.out}, {self.v(step.fit)})")
            elif isinstance(step, C.Sum):
                if step.mode == "inplace":
                    lines.append(f"ADD(b{step.a}, {self.v(step.b)}, out=b{step.a})")
                elif step.scalar:
                    lines.append(f"b{step.out} = NP.asarray({self.v(step.a)} + {self.v(step.b)})")
                else:
                    lines.append(f"b{step.out} = {self.v(step.a)} + {self.v(step.b)}")
            elif isinstance(step, C.Scatter):
                if step.fresh:
                    D = self._name(step.dtype, "D")
                    lines.append(f"b{step.out} = {self._module(step.xp)}.zeros({step.shape!r}, "
                                 f"dtype={D})")
                    if step.prev is not None:
                        lines.append(f"b{step.out} += {self.v(step.prev)}")
                g = f"{self.v(step.g)}.astype({self._name(step.dtype, 'D')})" if step.cast \
                    else self.v(step.g)
                lines.append(f"b{step.out}[{self._const(step.index)}] += {g}")
        if bw.to_grad:     # the engine's end of a pass (autograd.run_backward), inline
            owners = []
            for ref, sid in bw.leaves:
                t = self._tensor_of(ref)
                owner = self._owner(t) if t is not None else None
                if owner is not None and t.requires_grad:
                    owners.append((owner, sid))
            lines.append("_given = set()")
            lines.append("with LEAF_LOCK:")
            for owner, sid in owners:
                lines.append(f"    SG({owner}, {self.v(sid)}, False, _given)")
            if not owners:
                lines.append("    pass")
            lines.append("if TFIN(): GRADS_SET(["
                         + ", ".join(o for o, _ in owners) + "])")
        else:
            lines.append("GDONE()")

    def _reads(self, ins, new_lines):
        """The buffers each of the lines just emitted reads (for freeing after last use)."""
        import re
        out = []
        for line in new_lines:
            out.append(tuple(int(m) for m in re.findall(r"\bb(\d+)\b", line)))
        return out

    def _slots_in(self, e):
        used = set()
        self._used_expr(e, used)
        return tuple(used)

    def _with_frees(self, lines, reads):
        """Insert `del bN` after the last line reading each large buffer."""
        last = {}
        for i, rs in enumerate(reads):
            for s in rs:
                last[s] = i
        after = {}
        for s, i in last.items():
            slot = self.slots[s]
            if slot.shape is None or slot.dtype is None or i == len(lines) - 1:
                continue
            size = int(np.prod(slot.shape, dtype=np.int64)) * np.dtype(slot.dtype).itemsize
            if size >= FREE_BYTES:
                after.setdefault(i, []).append(s)
        out = []
        for i, line in enumerate(lines):
            out.append(line)
            if i in after:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(indent + "del " + ", ".join(f"b{s}" for s in sorted(after[i])))
        return out


def _changed(name):
    raise CompileError(
        f"cr.compile: a value-dependent choice inside chainrule ({name}) came out differently "
        "for this call's data than for the captured one, after the step had begun changing "
        "state; use cr.compile(fn, fallback=True) or keep such data out of the compiled step.")
