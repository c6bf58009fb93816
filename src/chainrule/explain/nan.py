"""Where a NaN or an infinity came from: the first operation that made one.

A non-finite value spreads through everything computed from it, so the useful fact is the
first operation (in forward order) whose inputs were all finite and whose output was not,
with its input values and the line of the user's code that called it. That line is known when
the forward pass ran inside `cr.detect_anomaly()` (which remembers where each node was made;
`check_nan=False` remembers without stopping the backward pass); otherwise the explanation
says so. If every forward value is finite but a gradient is not, the first step of the
backward pass (in the engine's order) that turned a finite gradient into a non-finite one is
named instead.
"""
import linecache

import numpy as np

from . import fmt


def _finite(a):
    a = np.asarray(a)
    return a.dtype.kind != "f" or bool(np.all(np.isfinite(a)))


def _bad(a):
    from ..anomaly import summarize
    return summarize(np.asarray(a))


def _where(trace):
    if trace is None:
        return None
    filename, lineno, func = trace
    return {"file": filename, "line": lineno, "function": func,
            "code": linecache.getline(filename, lineno).strip()}


def _place(where):
    if where is None:
        return ("its source line is not known: build the forward pass inside `with "
                "cr.detect_anomaly(check_nan=False):` and explain names the line")
    code = f": {where['code']}" if where["code"] else ""
    return f'File "{where["file"]}", line {where["line"]}, in {where["function"]}{code}'


def _operands(d, step):
    parts = []
    for u in step.inputs:
        name = u.name or ("a constant" if u.scalar else "an unnamed value")
        shown = d.show(u.value) if u.value.size > 1 else d.num(u.value)
        parts.append(f"{name} = {shown}")
    return "; ".join(parts)


def origin(d):
    """The model's `nan` entry, or None when every value and gradient is finite."""
    rec = d.rec
    for s in rec.steps:
        if _finite(s.out.value) or not all(_finite(u.value) for u in s.inputs):
            continue
        where = _where(s.out.trace)
        prim = s.original
        name = s.out.name or "an unnamed value"
        message = (f"The first non-finite value is made by {prim.name} ({prim.formula}) at "
                   f"{name}: {_bad(s.out.value)}. Its inputs were finite ({_operands(d, s)}). "
                   f"Called at {_place(where)}.")
        if prim.hint:
            message += f" {prim.hint}"
        return {"phase": "forward", "node": s.out.index, "op": prim.name,
                "formula": prim.formula, "source": where, "message": message,
                "inputs": [u.index for u in s.inputs]}
    for s in rec.backward:
        if s.upstream is None or not _finite(s.upstream):
            continue
        for i, gi in enumerate(s.passed):
            if gi is None or _finite(gi):
                continue
            where = _where(s.out.trace)
            prim = s.original
            deriv = prim.derivs[min(i, len(prim.derivs) - 1)] if prim.derivs else "?"
            message = (f"Every forward value is finite, but the backward pass of {prim.name} "
                       f"({prim.formula}) made a non-finite gradient for its input {i}: "
                       f"{_bad(gi)}; the upstream gradient was finite, so its local derivative "
                       f"{deriv} is where it broke (inputs: {_operands(d, s)}). "
                       f"Called at {_place(where)}.")
            return {"phase": "backward", "node": s.out.index, "op": prim.name,
                    "formula": prim.formula, "source": where, "message": message,
                    "inputs": [u.index for u in s.inputs], "input": i}
    return None


def block_text(entry):
    return fmt.plain(entry["message"])
