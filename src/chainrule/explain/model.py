"""The data model of a derivation: `Explanation.to_dict()` (schema: docs/explain_schema.md).

`build(rep)` turns a recorded backward pass and its Derivation into plain Python data (dicts,
lists, strings, numbers): the graph's nodes with their values and gradients, every primitive
edge with its local derivative and the gradient the engine passed along it, the order the
engine ran, and the derivation itself — forward lines, the table of local derivatives, the
chain-rule product per parameter, the sums over paths, the layer view, the update steps with
the optimizer's state, and the finite-difference checks. Every line of the derivation is kept
twice, as text and as LaTeX, each with the spans of the named quantities it contains
(`refs`), and every quantity is listed once with its value (`quantities`).

The text, Markdown and LaTeX renderers, the worksheets and the graph picture are all built
from this data, and so is anything outside chainrule that wants to show a derivation (the
backward-pass explorer).
"""
import math

import numpy as np

from . import fmt
from .derive import LATEX, LONG, TEXT, latex_value
from .nan import _where

SCHEMA = "chainrule.explain"
VERSION = 1


# ---- plain data ----
def data(a):
    """A number or nested list, JSON-ready: nan and ±inf as the strings 'nan', 'inf', '-inf'."""
    if a is None:
        return None
    arr = np.asarray(a)
    if arr.dtype.kind == "b":
        return arr.tolist()
    if arr.dtype.kind in "iu":
        return arr.tolist()
    if arr.dtype.kind not in "f":
        return str(arr.tolist())
    if arr.ndim == 0:
        return _number(float(arr))
    return [data(x) for x in arr]


def _number(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def line(text, latex, note=None, note_of=None):
    """A derivation line: plain text and LaTeX with the spans of their quantities."""
    t, trefs = fmt.spans(text)
    lx, lrefs = fmt.spans(latex)
    out = {"text": t, "latex": lx, "refs": trefs, "latex_refs": lrefs}
    if note:
        out["note"] = note
        if note_of:
            out["note_of"] = note_of
    return out


def _shape(v):
    return list(np.shape(v))


# ---- the whole model ----
def build(rep):
    d = rep.d
    rec = d.rec
    d.quantities.clear()
    out = {
        "schema": SCHEMA,
        "version": VERSION,
        "title": rep.title or f"Backward pass of {rec.root.name}",
        "loss": {"node": rec.root.index, "name": rec.root.name, "value": data(rec.root.value),
                 "shape": _shape(rec.root.value)},
        "settings": {"round": d.rounding, "grad_decimals": d.grad_decimals, "digits": d.digits,
                     "dtype": str(rec.root.value.dtype), "full": d.full,
                     "expanded": d.expanded, "verified": rep.verified},
        "notes": header_notes(d),
        "nan": None,
        "nodes": nodes(d),
        "edges": edges(d),
        "backward_order": [s.out.index for s in rec.backward],
    }
    from .nan import origin
    out["nan"] = origin(d)
    out["forward"] = forward(d)
    out["steps"] = steps(d, rep.verified)
    out["chains"] = chains(d)
    out["path_sums"] = path_sums(d)
    out["layers"] = []
    if rep.layers:
        from .layers import layer_model
        out["layers"] = layer_model(rep)
    out["gradients"] = gradients(d)
    out["updates"] = [u.to_dict(d) for u in rep.updates]
    out["verification"] = verification(d, rep.verified)
    out["quantities"] = {k: {"kind": q["kind"], "value": data(q["value"]),
                             "rounded": q["rounded"]} for k, q in d.quantities.items()}
    return out


def header_notes(d):
    rec = d.rec
    mode = []
    if d.rounding is not None:
        mode.append(f"textbook rounding: every function value (σ, exp, log, division, …) is "
                    f"rounded to {d.rounding} decimals before it is used, and so is every local "
                    f"derivative that is a function value (cos x, 1/x, 1/(2√x), …); sums and "
                    f"products of rounded numbers stay exact, and gradients are written to "
                    f"{d.grad_decimals} decimals")
        if rec.root.value.dtype != np.float64:
            mode.append(f"the values are {rec.root.value.dtype}, so the last digits carry "
                        "rounding noise: use dtype=cr.float64 for a hand calculation's digits")
    if rec.root.value.size != 1:
        mode.append(f"output {rec.root.name} has shape {rec.root.value.shape}")
    return ["; ".join(mode) + "."] if mode else []




def nodes(d):
    out = []
    for v in d.rec.values:
        step = v.step
        out.append({
            "id": v.index, "name": v.name, "role": v.role,
            "op": None if step is None else step.original.name,
            "symbol": None if step is None else step.prim.symbol,
            "inputs": [] if step is None else [u.index for u in step.inputs],
            "params": {} if step is None else _params(step.params),
            "shape": _shape(v.value), "dtype": str(v.value.dtype),
            "value": data(v.value), "unrounded": data(v.unrounded), "grad": data(v.grad),
            "image": None if v.image is None else data(v.image["value"]),
            "shown": v.index not in d.hidden and d.is_stop(v) and v.role != "constant",
            "compound": _compound_of(d, v),
            "source": _where(v.trace),
        })
    return out


def _compound_of(d, v):
    for k, c in enumerate(d.compounds):
        if v.index in c.internal or any(s.out is v for s in c.members):
            return k
    return None


def _params(params):
    out = {}
    for k, p in params.items():
        if k == "saved":
            continue
        if isinstance(p, np.ndarray):
            out[k] = data(p) if p.size <= 64 else f"array{tuple(p.shape)}"
        elif isinstance(p, float):
            out[k] = _number(p)
        elif isinstance(p, (int, str, bool)) or p is None:
            out[k] = p
        elif isinstance(p, tuple) and all(isinstance(x, (int, type(None))) or
                                          isinstance(x, tuple) for x in p):
            out[k] = [list(x) if isinstance(x, tuple) else x for x in p]
        else:
            out[k] = str(p)
    return out


def edges(d):
    out = []
    for s in d.rec.steps:
        for i, u in enumerate(s.inputs):
            c = s.check[i]
            out.append({"from": u.index, "to": s.out.index, "input": i,
                        "local": data(s.local[i]), "local_unrounded": data(s.local_unrounded[i]),
                        "passed": data(s.passed[i]),
                        "check": None if c is None else {"ok": c.ok, "rule": c.rule,
                                                         "numeric": c.numeric}})
    return out


# ---- forward pass ----
ROLE_WORD = {"input": "input", "target": "target", "labels": "labels", "parameter": "parameter"}


def forward(d):
    given = [v for v in d.values if v.is_leaf and v.name is not None and v.role != "hidden"]
    groups = [([v for v in given if not v.is_param], "data"),
              ([v for v in given if v.is_param], "parameter")]
    lines = []
    for group, kind in groups:
        small = group if group and all(v.scalar for v in group) else []
        if small:
            for v in small:
                d.quantity(v.name, "given", v.value)
            words = {ROLE_WORD[v.role] for v in small}
            word = words.pop() if len(words) == 1 else "input"
            plural = "s" if len(small) > 1 else ""
            if kind == "data" and len({v.role for v in small}) > 1:
                word, plural = "given value", "s"
            text = ", ".join(f"{v.name} = {fmt.tag(v.name, d.num(v.value))}" for v in small)
            latex = r",\quad ".join(f"{LATEX.name(v.name)} = {fmt.tag(v.name, d.num(v.value))}"
                                    for v in small)
            lines.append({"nodes": [v.index for v in small], "kind": "given",
                          **line(f"{text}    ({word}{plural})",
                                 rf"{latex} \quad \text{{({word}{plural})}}")})
        for v in group:
            if not v.scalar or not small:
                d.quantity(v.name, "given", v.value)
                lines.append({"nodes": [v.index], "kind": "given",
                              **_assign(d, v, None, ROLE_WORD.get(v.role, "input"))})
    stops = d.stops()
    for c in d.compounds:
        for ex in c.extras:
            lines.append(_extra(d, c, ex))
    kept, omitted = trim(stops)
    for v in kept:
        if v is None:
            lines.append({"nodes": [], "kind": "gap", **line(f"… {omitted} more values …",
                                                             rf"\dots\ \text{{{omitted} more values}}\ \dots")})
            continue
        lines.append({"nodes": [v.index], "kind": "value", **_assign(d, v, v, None)})
    _order_extras(lines, d)
    return lines


def _order_extras(lines, d):
    """Put each compound's extra lines (labels, one-hot, probabilities) just before the line
    of the compound's output."""
    for c in d.compounds:
        names = {ex["name"] for ex in c.extras}
        extra = [ln for ln in lines if ln.get("extra") in names]
        if not extra:
            continue
        for ln in extra:
            lines.remove(ln)
        at = next((k for k, ln in enumerate(lines) if c.out.index in ln["nodes"]), len(lines))
        lines[at:at] = extra


def _extra(d, c, ex):
    value = np.asarray(ex["value"])
    q = d.quantity(ex["name"], "given" if ex["role"] == "labels" else "forward", value)
    shown = fmt.tag(q, d.num(value) if value.size == 1 else d.show(value))
    parts_t, parts_l = [ex["name"]], [LATEX.name(ex["name"])]
    if ex.get("formula"):
        ft, fl = ex["formula"]
        operand = ex.get("operand")
        if operand is not None:
            ft = fmt.fill(ft, {"z": d._expr(operand, TEXT, False, False)})
            fl = fmt.fill(fl, {"z": d._expr(operand, LATEX, False, False)})
        parts_t.append(ft)
        parts_l.append(fl)
    parts_t.append(shown)
    parts_l.append(latex_value(shown))
    note = ex["role"] if ex["role"] in ("labels", "target") else None
    if value.ndim:
        note = (note + ", " if note else "") + f"shape {tuple(value.shape)}"
    return {"nodes": [], "kind": "extra", "extra": ex["name"], "role": ex["role"],
            "value": data(value), **line(" = ".join(parts_t), " = ".join(parts_l), note=note)}


HEAD, TAIL = 60, 20  # rows shown of a very long derivation (the rest is counted)


def trim(items):
    """`items` with its middle replaced by one None when it is too long to read."""
    if len(items) <= HEAD + TAIL + 20:
        return items, 0
    return items[:HEAD] + [None] + items[-TAIL:], len(items) - HEAD - TAIL


def _assign(d, v, formula_of, label):
    value = v.value if v.image is None else v.image["value"]
    q = d.quantity(v.name, "given" if v.is_leaf else "forward", value,
                   rounded=v.unrounded is not None)
    text_parts, latex_parts = [v.name], [LATEX.name(v.name)]
    if formula_of is not None:
        text_parts.append(d.expr(formula_of, TEXT))
        latex_parts.append(d.expr(formula_of, LATEX))
        step = d.step_of(formula_of)
        if d.numeric_ok(step) and len(d.steps) < 400:
            nt = d.expr(formula_of, TEXT, numeric=True)
            if fmt.plain(nt) != fmt.plain(text_parts[-1]) and len(fmt.plain(nt)) <= LONG:
                text_parts.append(nt)
                latex_parts.append(d.expr(formula_of, LATEX, numeric=True))
    val = fmt.tag(q, d.num(value) if np.size(value) == 1 else d.show(value))
    text_parts.append(val)
    latex_parts.append(latex_value(val))
    note = []
    if v.image is not None:
        k = v.image["geometry"]["kernel"]
        note.append(f"input image, shape {tuple(np.shape(value))}; it needs no gradient, so the "
                    f"engine kept only its {k[0]}×{k[1]} windows, from which it is read back")
    elif label:
        note.append(label + (f", shape {tuple(v.value.shape)}" if not v.scalar else ""))
    elif not v.scalar:
        note.append(f"shape {tuple(v.value.shape)}")
    note_of = None
    if formula_of is not None:
        c = d.step_of(formula_of)
        note += [n for n in getattr(c, "notes", []) if isinstance(n, str)]
    if v.unrounded is not None:
        note.append(f"rounded from {fmt.value_text(v.unrounded, 7)}")
        note_of = q
    return line(" = ".join(text_parts), " = ".join(latex_parts),
                note="; ".join(note) if note else None, note_of=note_of)


# ---- local derivatives ----
def steps(d, verify):
    rows = []
    kept, omitted = trim(d.stops())
    for v in kept:
        if v is None:
            rows.append({"output": None, "gap": omitted, "cells": [],
                         "function": line(f"… {omitted} more rows …",
                                          rf"\text{{… {omitted} more rows …}}")})
            continue
        cells = [_local_cell(d, v, u, verify) for u in d.stop_inputs(v)]
        if not cells:
            continue
        step = d.step_of(v)
        row = {"output": v.index, "op": getattr(step.prim, "name", None),
               "compound": getattr(step, "kind", None),
               "function": line(f"{v.name} = {d.expr(v, TEXT)}",
                                f"{LATEX.name(v.name)} = {d.expr(v, LATEX)}"),
               "cells": cells, "notes": []}
        note = _textbook_note(d, step, None) if hasattr(step, "kind") else None
        if note:
            row["notes"].append(note)
        rows.append(row)
    return rows


FORMULA_LONG = 80   # a folded local derivative longer than this is shown by its value only


def _local_cell(d, v, u, verify):
    label_t = TEXT.frac(v.name, u.name)
    value, kind = d.factor_value(v, u)
    q = d.quantity(label_t, "local", value if kind != "jacobian" else None)
    parts_t, parts_l = [label_t], [LATEX.frac(LATEX.name(v.name), LATEX.name(u.name))]
    formula_t, _ = d.factor(v, u, TEXT)
    formula_l, _ = d.factor(v, u, LATEX)
    if len(fmt.plain(formula_t)) <= FORMULA_LONG:
        parts_t.append(formula_t)
        parts_l.append(formula_l)
    shown = None
    if value is not None:
        shown = d.gnum(value) if kind == "scalar" else d.gshow(value)
        paths = d.segments(v, u)
        if all(d.numeric_ok(s) for path in paths for s, _ in path):
            nt = d.factor(v, u, TEXT, numeric=True)[0]
            nl = d.factor(v, u, LATEX, numeric=True)[0]
            if fmt.plain(nt) not in (fmt.plain(formula_t), shown) and _has_op(fmt.plain(nt)) \
                    and len(parts_t) > 1 and len(fmt.plain(nt)) <= LONG:
                parts_t.append(nt)
                parts_l.append(nl)
    else:
        local = _single_local(d, v, u)
        if local is not None:
            value, kind = local
            shown = d.show(value)
    if value is not None and kind != "scalar" and np.size(value) > 1 and \
            np.all(np.asarray(value) == np.asarray(value).flat[0]) and len(parts_t) > 1 and \
            _leading(parts_t[1]) == d.gnum(np.asarray(value).flat[0]):
        shown = None     # ∂h2/∂h1 = 1, not 1 = [1, 1, 1, 1]
    elif value is not None and kind == "elementwise" and np.size(value) > 1 and \
            np.all(np.asarray(value) == np.asarray(value).flat[0]):
        shown = d.gnum(np.asarray(value).flat[0])   # ∂h1/∂x = w = 0.5 (w broadcast)
    if shown is not None and _leading(parts_t[-1]) != shown:
        parts_t.append(fmt.tag(q, shown))
        parts_l.append(latex_value(fmt.tag(q, shown)))
    text, latex = " = ".join(parts_t), " = ".join(parts_l)
    if kind == "jacobian" and getattr(d.step_of(v), "rows", 1) > 1:
        text += " (row 1)"
        latex += r" \ \text{(row 1)}"
    mark = _verify_mark(d, v, u) if verify else None
    if mark:
        text += " " + mark
        latex += r"\ \checkmark" if mark == "✓" else rf"\ \text{{{mark}}}"
    before = _unrounded_local(d, v, u)
    note = f"rounded from {before}" if before is not None else None
    cell = {"wrt": u.index, "label": q, "value": data(value), "kind": kind,
            **line(text, latex, note=note, note_of=q if note else None), "check": mark}
    return cell


def _unrounded_local(d, v, u):
    """In textbook mode, a looked-up local derivative before it was rounded (cos 1.4 =
    0.1699671 is written 0.17), as text; None when it was not rounded."""
    path = d.segments(v, u)
    if len(path) != 1 or len(path[0]) != 1:
        return None
    s, i = path[0][0]
    before = getattr(s, "local_unrounded", [None] * (i + 1))[i]
    if before is None or s.local[i] is None or np.array_equal(before, s.local[i]):
        return None
    return fmt.value_text(before, 7)


def _leading(formula):
    """A formula without its explanation in brackets: '1 (g summed over the batch)' -> '1'."""
    return fmt.plain(formula).split(" (")[0]


def _single_local(d, v, u):
    path = d.segments(v, u)
    if len(path) == 1 and len(path[0]) == 1:
        s, i = path[0][0]
        value, kind = d.local_of(s, i)
        if value is not None:
            return value, kind
    return None


def _has_op(text):
    return any(ch.isdigit() for ch in text) and any(op in text for op in "+-×·/()^²√")


def _verify_mark(d, v, u):
    marks = []
    for path in d.segments(v, u):
        for s, i in path:
            c = s.check[i]
            if c is not None:
                marks.append(c)
    if not marks:
        return ""
    return "✓" if all(c.ok for c in marks) else "✗ " + "; ".join(c.detail for c in marks
                                                                 if not c.ok)


def _textbook_note(d, comp, note):
    """A compound's textbook shortcut with the engine's numbers: a softmax (or σ) followed by
    a cross-entropy gives ∂L/∂z = (p − Y)/N, the probabilities minus the labels."""
    found = _shortcut(d, comp)
    if found is None:
        return None
    z, (pn, pv, pq), (yn, yv, yq), n, what, letter = found
    L = d.rec.root.name
    q = d.quantity(TEXT.frac(L, z.name), "chain", d.gvalue(z.grad))
    over = f"/{n}" if n > 1 else ""
    sym_t = f"({pn} − {yn}){'/' + letter if n > 1 else ''}"
    pl, yl = _latex_label(pn), _latex_label(yn)
    sym_l = rf"\frac{{{pl} - {yl}}}{{{letter}}}" if n > 1 else rf"{pl} - {yl}"
    text = [TEXT.frac(L, z.name), sym_t]
    latex = [LATEX.frac(LATEX.name(L), LATEX.name(z.name)), sym_l]
    if np.size(pv) <= 2 * 8:
        num = f"({fmt.tag(pq, d.show(pv))} − {fmt.tag(yq, d.show(yv))}){over}"
        text.append(num)
        latex.append(latex_value(num.replace("−", "-")))
    shown = fmt.tag(q, d.gshow(z.grad))
    text.append(shown)
    latex.append(latex_value(shown))
    from .render import text_escape
    return line(f"{what} together: " + " = ".join(text),
                rf"\text{{{text_escape(what)} together: }} " + " = ".join(latex))


def _latex_label(name):
    if name.endswith(")") and "(" in name:          # softmax(z)
        f, arg = name[:-1].split("(", 1)
        return rf"\mathrm{{{f}}}({LATEX.name(arg)})"
    return LATEX.name(name)


def _shortcut(d, comp):
    """(z, p, labels, N, words, letter) where compound `comp` is a cross-entropy right after
    the softmax or σ that made p from z (z used nowhere else), else None; p and labels as
    (label, value, quantity)."""
    L = d.rec.root
    if comp.out is not L and comp.out.grad is not None and \
            float(np.reshape(comp.out.grad, (-1,))[0]) != 1.0:
        return None
    if comp.kind == "binary-cross-entropy":
        p, y = comp.inputs
        if p.is_leaf or p.step.prim.symbol != "σ":
            return None
        z, what, letter = p.step.inputs[0], "σ and binary cross-entropy", "N"
        n = comp.prim.constants.get("N", 1)
    elif comp.kind == "cross-entropy" and getattr(comp, "softmax", None) is not None:
        p, y = comp.inputs
        z, what, letter = comp.softmax.inputs[0], "softmax and cross-entropy", "M"
        n = comp.prim.constants.get("M", 1)
        if not np.allclose(np.asarray(y.value).sum(axis=comp.softmax.axis), 1.0):
            return None
    elif comp.kind == "negative-log-likelihood" and getattr(comp, "log_softmax", None):
        z = comp.log_softmax.inputs[0]
        n = comp.prim.constants.get("N", 1) if "/N" in comp.prim.derivs[0] else 1
        uses = len({id(s) for s, _ in d.consumers.get(z.index, [])})
        if z.grad is None or z.name is None or uses != 1:
            return None
        return (z, (f"softmax({z.name})", comp.log_softmax.probs, None),
                (comp.yname, comp.onehot, comp.yname), n, "log_softmax and NLL", "N")
    else:
        return None
    uses = len({id(s) for s, _ in d.consumers.get(z.index, [])})
    if z.grad is None or z.name is None or uses != 1 or p.name is None or y.name is None:
        return None
    return z, (p.name, p.value, p.name), (y.name, y.value, y.name), n, what, letter


# ---- chain rule ----
def _product(d, vals, style, labels):
    out = []
    for k, (x, q) in enumerate(zip(vals, labels)):
        t = d.gnum(x)
        t = fmt.tag(q, t)
        out.append(f"({t})" if k and fmt.plain(t).startswith("-") else t)
    return style.times.join(out)


def _array_product(d, vals, style, labels, summed):
    out = []
    for x, q in zip(vals, labels):
        arr = np.asarray(x, np.float64)
        if arr.size > 1 and np.all(arr == arr.flat[0]):
            arr = arr.flat[0]
        t = d.gnum(arr) if np.size(arr) == 1 else d.show(d.gvalue(arr))
        out.append(fmt.tag(q, t if style is TEXT else latex_value(t)))
    body = style.odot.join(out)
    if summed:
        return (f"Σ ({body})" if style is TEXT else rf"\sum ({body})")
    return body


def chains(d):
    out = []
    root = d.rec.root
    for p in d.rec.params():
        entry = {"param": p.index, "name": p.name, "label": TEXT.frac(root.name, p.name),
                 "grad": data(p.grad), "written": data(None if p.grad is None else
                                                       d.gvalue(p.grad)),
                 "paths": [], "line": None, "note": None}
        out.append(entry)
        if p.grad is None:
            entry["note"] = f"{p.name}: the gradient does not reach it."
            continue
        q = d.quantity(entry["label"], "chain", d.gvalue(p.grad))
        seqs, count = d.stop_paths(p)
        top_t = TEXT.frac(root.name, p.name)
        top_l = LATEX.frac(LATEX.name(root.name), LATEX.name(p.name))
        shown = fmt.tag(q, d.gshow(p.grad))
        if seqs is None:
            what = f"Σ over {count} paths" if count > 1 else "product along one long path"
            lwhat = (rf"\sum_{{{count}\ \text{{paths}}}}" if count > 1 else
                     r"\prod_{\text{one long path}}")
            entry["line"] = line(f"{top_t} = {what} = {shown}",
                                 rf"{top_l} = {lwhat} = {latex_value(shown)}")
            entry["count"] = count
            continue
        text, latex = [top_t], [top_l]
        if len(seqs) == 1 and len(seqs[0]) == 2:
            # L reaches p directly (through unnamed steps): write the folded formula
            ft, fl = d.factor(root, p, TEXT)[0], d.factor(root, p, LATEX)[0]
            if len(fmt.plain(ft)) <= FORMULA_LONG:
                text.append(ft)
                latex.append(fl)
        else:
            text.append(" + ".join(TEXT.dot.join(TEXT.frac(a.name, b.name)
                                                 for a, b in zip(s, s[1:])) for s in seqs))
            latex.append(" + ".join(LATEX.dot.join(LATEX.frac(LATEX.name(a.name),
                                                              LATEX.name(b.name))
                                                   for a, b in zip(s, s[1:])) for s in seqs))
        terms = [d.chain_terms(s) for s in seqs]
        kinds = {t[0] if t else None for t in terms}
        if kinds == {"scalar"} or kinds == {"array"}:
            total = sum(np.asarray(t[2]) for t in terms)
            scale = float(np.max(np.abs(p.grad), initial=0.0)) if np.all(np.isfinite(p.grad)) \
                else 0.0
            if not np.allclose(total, p.grad, rtol=1e-6, atol=1e-12 + 1e-9 * scale,
                               equal_nan=True):
                kinds = {None}
        for s, t in zip(seqs, terms):
            labels = [TEXT.frac(a.name, b.name) for a, b in zip(s, s[1:])]
            entry["paths"].append({"stops": [v.index for v in s], "factors": labels,
                                   "values": None if t is None else [data(x) for x in t[1]],
                                   "product": None if t is None else data(t[2])})
        if kinds == {"scalar"}:
            prod_t = [_product(d, t[1], TEXT, _qlabels(d, s)) for s, t in zip(seqs, terms)]
            prod_l = [_product(d, t[1], LATEX, _qlabels(d, s)) for s, t in zip(seqs, terms)]
            text.append(" + ".join(f"({x})" if len(seqs) > 1 and "×" in fmt.plain(x) else x
                                   for x in prod_t))
            latex.append(" + ".join(f"({x})" if len(seqs) > 1 and "times" in fmt.plain(x) else x
                                    for x in prod_l))
            if len(seqs) > 1:
                vals = [_paren_neg(d.gnum(t[2]), k) for k, t in enumerate(terms)]
                text.append(" + ".join(vals))
                latex.append(" + ".join(vals))
        elif kinds == {"array"}:
            summed = [np.broadcast_shapes(*[np.shape(x) for x in t[1]]) != p.value.shape
                      for t in terms]
            prod_t = [_array_product(d, t[1], TEXT, _qlabels(d, s), sm)
                      for s, t, sm in zip(seqs, terms, summed)]
            prod_l = [_array_product(d, t[1], LATEX, _qlabels(d, s), sm)
                      for s, t, sm in zip(seqs, terms, summed)]
            joined = " + ".join(prod_t)
            if len(fmt.plain(joined)) <= 3 * LONG:
                text.append(joined)
                latex.append(" + ".join(prod_l))
        text.append(shown)
        latex.append(latex_value(shown))
        keep = [k for k in range(len(text))
                if k == 0 or fmt.plain(text[k]) != fmt.plain(text[k - 1])]
        if len(keep) < len(text) and len(keep) >= 2 and fmt.plain(text[keep[-2]]) == \
                fmt.plain(shown):
            keep = keep[:-2] + keep[-1:]
        text, latex = [text[k] for k in keep], [latex[k] for k in keep]
        entry["line"] = line(" = ".join(text), " = ".join(latex))
        if len(seqs) > 1:
            entry["note"] = (f"{len(seqs)} paths lead from {root.name} to {p.name}; "
                             "the chain rule adds their products.")
    return out


def _qlabels(d, seq):
    return [d.quantity(TEXT.frac(a.name, b.name), "local", None)
            if TEXT.frac(a.name, b.name) not in d.quantities else TEXT.frac(a.name, b.name)
            for a, b in zip(seq, seq[1:])]


def _paren_neg(t, k):
    return f"({t})" if k and t.startswith("-") else t


# ---- sums over paths ----
def path_sums(d):
    out = []
    L = d.rec.root.name
    for v, above in d.path_sums():
        label = TEXT.frac(L, v.name)
        q = d.quantity(label, "chain", d.gvalue(v.grad))
        terms, ok = [], True
        for c in above:
            fv, kind = d.factor_value(c, v)
            if c.grad is None or fv is None or kind not in ("scalar", "elementwise", "gradient"):
                ok = False
                terms.append((c, None, fv))
                continue
            g = np.asarray(c.grad, np.float64)
            if kind == "gradient":
                contrib = g.reshape(()) * fv if g.size == 1 else None
            else:
                try:
                    from .. import autograd
                    contrib = np.asarray(autograd.sum_to(g * np.asarray(fv), v.value.shape))
                except Exception:
                    contrib = None
            ok = ok and contrib is not None
            terms.append((c, contrib, fv))
        if ok:
            total = sum(np.asarray(t[1]) for t in terms)
            ok = np.allclose(total, v.grad, rtol=1e-6, atol=1e-12)
        sym_t = " + ".join(f"{TEXT.frac(L, c.name)} · {TEXT.frac(c.name, v.name)}"
                           for c, _, _ in terms)
        sym_l = " + ".join(rf"{LATEX.frac(LATEX.name(L), LATEX.name(c.name))} \cdot "
                           rf"{LATEX.frac(LATEX.name(c.name), LATEX.name(v.name))}"
                           for c, _, _ in terms)
        text, latex = [label, sym_t], [LATEX.frac(LATEX.name(L), LATEX.name(v.name)), sym_l]
        scalar = ok and all(np.size(c.grad) == 1 and np.size(fv) == 1 for c, _, fv in terms)
        if scalar:
            prods = []
            for c, contrib, fv in terms:
                qc = d.quantity(TEXT.frac(L, c.name), "chain", d.gvalue(c.grad))
                ql = TEXT.frac(c.name, v.name)
                ql = ql if ql in d.quantities else d.quantity(ql, "local", fv)
                gc, lc = fmt.tag(qc, d.gnum(c.grad)), fmt.tag(ql, d.gnum(fv))
                lc = f"({lc})" if fmt.plain(lc).startswith("-") else lc
                prods.append((gc, lc))
            text.append(" + ".join(f"({g} × {lc})" for g, lc in prods))
            latex.append(" + ".join(rf"({g} \times {lc})" for g, lc in prods))
            vals = [_paren_neg(d.gnum(t[1]), k) for k, t in enumerate(terms)]
            text.append(" + ".join(vals))
            latex.append(" + ".join(vals))
        elif ok:
            vals = [d.gshow(t[1]) for t in terms]
            text.append(" + ".join(vals))
            latex.append(" + ".join(latex_value(x) for x in vals))
        shown = fmt.tag(q, d.gshow(v.grad))
        text.append(shown)
        latex.append(latex_value(shown))
        out.append({"value": v.index, "name": v.name, "label": q,
                    "consumers": [c.index for c, _, _ in terms],
                    "terms": [{"via": c.index, "upstream": data(c.grad), "local": data(fv),
                               "contribution": data(contrib)} for c, contrib, fv in terms],
                    "total": data(v.grad),
                    "line": line(" = ".join(text), " = ".join(latex)),
                    "note": (f"{v.name} is used by {len(terms)} later values, so the gradients "
                             f"along the {len(terms)} paths add up")})
    return out


# ---- gradients table, verification ----
def gradients(d):
    rows = []
    for p in d.rec.params():
        g = "—" if p.grad is None else d.gshow(p.grad)
        q = TEXT.frac(d.rec.root.name, p.name)
        if p.grad is not None and q in d.quantities:
            g = fmt.tag(q, g)
        shape = "scalar" if p.scalar else str(tuple(p.value.shape))
        rows.append({"param": p.index, "name": p.name, "shape": shape,
                     "grad": data(p.grad), "cells": [p.name, shape, fmt.plain(g)],
                     "latex_cells": [LATEX.name(p.name), shape, fmt.plain(latex_value(g))]})
    return rows


def verification(d, verified):
    checks = []
    for s in d.rec.steps:
        for i, c in enumerate(s.check):
            if c is not None:
                checks.append({"node": s.out.index, "input": i, "ok": c.ok, "rule": c.rule,
                               "numeric": c.numeric})
    return {"enabled": bool(verified), "checks": checks,
            "ok": all(c["ok"] for c in checks) if verified else None}
