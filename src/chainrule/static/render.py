"""`step.graph()`: a captured program as text, one line per instruction, buffers named.

    static graph of train_step: 4 operations, 7 backward steps, 2 host calls (variant 1 of 1)
    buffers
      b0  input 0                        (64, 784) float32    input (new every call)
      b2  0.weight                       (128, 784) float32   parameter (read by identity)
      ...
    program
      SGD.zero_grad()
      b5  = linear(b0, b2, b3)           (64, 128) float32
      ...
      backward
        b9  = 1                          seed
        b10 = softmax_cross_entropy'x(b9, b8, b7, labels=b1, ...)
      ...
"""
from . import capture as C


def _shape(slot):
    if slot.shape is None:
        return ""
    return f"{tuple(slot.shape)} {slot.dtype}"


def _kind(program, slot):
    if slot.kind == "arg":
        return "input (new every call)"
    if slot.kind == "load":
        t = slot.tensor
        what = "parameter" if t is not None and t.requires_grad else "state"
        if slot.attr == "grad":
            return f"{what}'s .grad (read after the step that sets it)"
        return f"{what} (read by identity every call)"
    if slot.kind == "const":
        return "constant" + (" (copied every call: updated in place)" if slot.mutated else "")
    if slot.kind == "host":
        return "returned by a host call"
    return ""


def _buffer_names(program):
    """id(tensor) -> 'path.name' for the buffers of the modules the step ran."""
    names = {}
    for m in program.modules:
        path = getattr(m, "_qualname", "")
        for key, t in getattr(m, "_buffers", {}).items():
            if t is not None:
                names.setdefault(id(t), f"{path}.{key}" if path else key)
    return names


def _label(program, slot):
    if slot.kind == "const":
        v = slot.value
        if getattr(v, "size", 2) == 1:
            return repr(v.reshape(-1)[0].item()) if hasattr(v, "reshape") else repr(v)
        return slot.label
    if slot.kind == "arg":
        return slot.label or f"input {slot.arg}"
    if slot.kind == "load":
        t = slot.tensor
        name = (t.name if t is not None else None) or \
            _buffer_names(program).get(id(t)) or slot.label or "tensor"
        return f"{name}.grad" if slot.attr == "grad" and not name.endswith(".grad") else name
    return slot.label


def _expr(e):
    kind = e[0]
    if kind == "slot":
        return f"b{e[1]}"
    if kind == "wrap":
        return f"tensor(b{e[1]})"
    if kind == "const":
        v = e[1]
        text = repr(v) if not hasattr(v, "shape") or getattr(v, "ndim", 1) == 0 else \
            f"<{getattr(v, 'dtype', '')} array {tuple(v.shape)}>"
        if isinstance(v, dict):
            text = "{…}"
        elif callable(v):
            text = getattr(v, "__name__", repr(v))
        return text if len(text) <= 40 else text[:37] + "..."
    if kind == "obj":
        v = e[1]
        if v is None or isinstance(v, (bool, int, float, str)):
            return repr(v)
        return getattr(v, "name", None) or type(v).__name__
    if kind == "input":
        return f"input {e[1]}"
    if kind in ("tuple", "list"):
        inner = ", ".join(_expr(x) for x in e[1])
        return f"({inner})" if kind == "tuple" else f"[{inner}]"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {_expr(x)}" for k, x in e[1]) + "}"
    return str(e)


def _params(params):
    shown = [f"{k}={_expr(v)}" for k, v in params.items() if k != "saved"]
    return (", " + ", ".join(shown)) if shown else ""


def _line(text, slot=None, width=52):
    if slot is None:
        return text
    return f"{text:<{width}} {_shape(slot)}"


def render_program(program, number=1, count=1):
    slots = program.slots
    ops = [i for i in program.instrs if isinstance(i, C.Op)]
    bws = [i for i in program.instrs if isinstance(i, C.Backward)]
    hosts = [i for i in program.instrs if isinstance(i, C.Host)]
    n_steps = sum(len(b.steps) for b in bws)
    name = program.name.rsplit(" v", 1)[0]
    out = [f"static graph of {name}: {len(ops)} operations, {n_steps} backward steps, "
           f"{len(hosts)} host calls (variant {number} of {count})", "buffers"]
    for slot in slots:
        if slot.id not in program.used or slot.kind not in ("arg", "load", "const", "host"):
            continue
        out.append(f"  b{slot.id:<5} {_label(program, slot):<26} {_shape(slot):<24} "
                   f"{_kind(program, slot)}")
    out.append("program")
    for ins in program.instrs:
        if isinstance(ins, C.Op):
            args = ", ".join(f"b{s}" for s in ins.inputs)
            out.append(_line(f"  b{ins.out:<5}= {ins.name}({args}{_params(ins.params)})",
                             slots[ins.out]))
        elif isinstance(ins, C.Inplace):
            out.append(f"  {ins.name}(b{ins.target}, {_expr(ins.other)})          in place")
        elif isinstance(ins, C.Decide):
            fn = getattr(ins.fn, "__name__", "decide")
            where = "checked before running" if ins.hoisted else "checked here"
            out.append(f"  {fn}(...) == {ins.value!r}          value-dependent choice, {where}")
        elif isinstance(ins, C.Host):
            method = "." in ins.name        # the first argument is the object itself
            args = ", ".join([_expr(a) for a in ins.args[1 if method else 0:]] +
                             [f"{k}={_expr(v)}" for k, v in ins.kwargs.items()])
            text = f"{ins.name}({args})"
            out.append(f"  b{ins.out:<5}= {text}" if ins.out is not None and
                       ins.out in program.used else f"  {text}")
        elif isinstance(ins, C.SetAttr):
            t = program._tensor_of(ins.tensor)
            label = (t.name if t is not None else None) or "tensor"
            value = "None" if ins.value is None else (
                _expr(ins.value) if isinstance(ins.value, tuple) else f"b{ins.value}")
            out.append(f"  {label}.{ins.attr} = {value}")
        elif isinstance(ins, C.Backward):
            out.append("  backward" + ("" if ins.to_grad else " (autograd.grad)"))
            for step in ins.steps:
                if isinstance(step, C.Seed):
                    src = "1" if step.source is None else _expr(step.source)
                    out.append(_line(f"    b{step.out:<5}= {src}", slots[step.out]) + "  seed")
                elif isinstance(step, C.Rule):
                    args = ", ".join(f"b{s}" for s in [step.g, step.y] + list(step.args))
                    fit = "  (fitted to the input's shape and dtype)" \
                        if step.fit is not None else ""
                    out.append(_line(f"    b{step.out:<5}= {step.name}.vjp[{step.i}]({args}"
                                     f"{_params(step.params)})", slots[step.out]) + fit)
                elif isinstance(step, C.Sum):
                    if step.mode == "inplace":
                        out.append(f"    b{step.a} += b{step.b}")
                    else:
                        out.append(_line(f"    b{step.out:<5}= b{step.a} + b{step.b}",
                                         slots[step.out]))
                elif isinstance(step, C.Scatter):
                    out.append(f"    b{step.out}[{step.index!r}] += b{step.g}")
            if ins.to_grad:
                names = []
                for ref, sid in ins.leaves:
                    t = program._tensor_of(ref)
                    if t is not None:
                        names.append(f"{t.name or 'tensor'} <- b{sid}")
                out.append("    .grad: " + ", ".join(names))
    out.append(f"  return {_expr(program.out)}")
    return "\n".join(out)
