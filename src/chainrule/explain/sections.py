"""The derivation as blocks that both renderers share.

A block is one of
    ("chapter", title) / ("title", title) / ("heading", title)     three levels of headings
    ("para", text)                              prose, the same in every format
    ("math", text, latex)                       one derivation line
    ("table", header, rows)                     rows of (text cells, latex cells)
so the plain-text and Markdown outputs cannot drift apart: they format the same blocks.
"""
import numpy as np

from . import fmt
from .derive import LATEX, TEXT


def header(d, title):
    rec = d.rec
    blocks = [("title", title)]
    mode = []
    if d.rounding is not None:
        mode.append(f"textbook rounding: every function value (σ, exp, log, division, …) is "
                    f"rounded to {d.rounding} decimals before it is used, sums and products of "
                    f"rounded numbers stay exact, and gradients are written to "
                    f"{d.grad_decimals} decimals")
        if rec.root.value.dtype != np.float64:
            mode.append(f"the values are {rec.root.value.dtype}, so the last digits carry "
                        "rounding noise: use dtype=cr.float64 for a hand calculation's digits")
    if rec.root.value.size != 1:
        mode.append(f"output {rec.root.name} has shape {rec.root.value.shape}")
    if mode:
        blocks.append(("para", "; ".join(mode) + "."))
    return blocks


def forward(d):
    rec = d.rec
    blocks = [("heading", "Forward pass")]
    params = [v for v in rec.values if v.is_param]
    inputs = [v for v in rec.values if v.is_leaf and not v.is_param and v.tensor.name]
    for group, label in ((inputs, "input"), (params, "parameter")):
        small = group if group and all(v.scalar for v in group) else []
        if small:
            text = ", ".join(f"{v.name} = {d.num(v.value)}" for v in small)
            latex = r",\quad ".join(f"{LATEX.name(v.name)} = {d.num(v.value)}" for v in small)
            plural = "s" if len(small) > 1 else ""
            blocks.append(("math", f"{text}    ({label}{plural})",
                           rf"{latex} \quad \text{{({label}{plural})}}"))
        for v in group:
            if not v.scalar or not small:
                blocks.append(_assign(d, v.name, None, v, label))
    stops, omitted = trim(d.stops())
    for v in stops:
        if v is None:
            blocks.append(("para", f"… {omitted} more values …"))
        else:
            blocks.append(_assign(d, v.name, v, v, None))
    return blocks


HEAD, TAIL = 60, 20  # rows shown of a very long derivation (the rest is counted)


def trim(items):
    """`items` with its middle replaced by one None when it is too long to read."""
    if len(items) <= HEAD + TAIL + 20:
        return items, 0
    return items[:HEAD] + [None] + items[-TAIL:], len(items) - HEAD - TAIL


def _assign(d, name, formula_of, v, label):
    text_parts, latex_parts = [name], [LATEX.name(name)]
    if formula_of is not None:
        text_parts.append(d.expr(formula_of, TEXT))
        latex_parts.append(d.expr(formula_of, LATEX))
        if d.numeric_ok(formula_of.step) and len(d.rec.steps) < 400:
            nt = d.expr(formula_of, TEXT, numeric=True)
            if nt != text_parts[-1]:
                text_parts.append(nt)
                latex_parts.append(d.expr(formula_of, LATEX, numeric=True))
    val = d.show(v.value)
    text_parts.append(val)
    latex_parts.append(_latex_value(val))
    text = " = ".join(text_parts)
    latex = " = ".join(latex_parts)
    note = []
    if label:
        note.append(label + (f", shape {tuple(v.value.shape)}" if not v.scalar else ""))
    elif not v.scalar:
        note.append(f"shape {tuple(v.value.shape)}")
    if v.unrounded is not None:
        note.append(f"rounded from {fmt.value_text(v.unrounded, 7)}")
    if note:
        text += f"    ({'; '.join(note)})"
        latex += rf" \quad \text{{({'; '.join(note)})}}"
    return ("math", text, latex)


def _latex_value(text):
    if text.startswith("tensor("):
        return rf"\text{{{text}}}"
    return text.replace("…", r"\dots")


def local_table(d, verify):
    blocks = [("heading", "Local derivatives")]
    rows = []
    stops, omitted = trim(d.stops())
    for v in stops:
        if v is None:
            gap = f"… {omitted} more rows …"
            rows.append(((gap, ""), (rf"\text{{{gap}}}", "")))
            continue
        cells_t, cells_l = [], []
        for u in d.stop_inputs(v):
            cells_t.append(_local_cell(d, v, u, TEXT, verify))
            cells_l.append(_local_cell(d, v, u, LATEX, verify))
        if not cells_t:
            continue
        f_t = f"{v.name} = {d.expr(v, TEXT)}"
        f_l = f"{LATEX.name(v.name)} = {d.expr(v, LATEX)}"
        rows.append(((f_t, ";  ".join(cells_t)), (f_l, r",\quad ".join(cells_l))))
    blocks.append(("table", ("function", "local derivatives"), rows))
    if verify:
        note = ("✓ / ✗: each local derivative rule checked against a float64 central finite "
                "difference at this node's input values")
        if d.rounding is not None:
            note += (" (with the unrounded function values, so a rule is judged, not the "
                     "rounding)")
        blocks.append(("para", note + "."))
    return blocks


LONG = 80  # a folded factor longer than this is shown by its value only


def _local_cell(d, v, u, style, verify):
    formula, value = d.factor(v, u, style)
    parts = [style.frac(style.name(v.name), style.name(u.name))]
    if len(d.factor(v, u)[0]) <= LONG:
        parts.append(formula)
    if value is not None:
        g = d.gnum(value)
        if all(s.out.scalar and all(x.scalar for x in s.inputs)
               for path in d.segments(v, u) for s, _ in path):
            numeric = d.factor(v, u, style, numeric=True)[0]
            if numeric not in (formula, g) and _has_op(numeric) and len(parts) > 1 and \
                    len(d.factor(v, u, numeric=True)[0]) <= LONG:
                parts.append(numeric)
        if parts[-1] != g:
            parts.append(g)
    else:
        local = _elementwise_local(d, v, u)
        if local is not None:
            parts.append(_latex_value(d.show(local)) if style.latex else d.show(local))
    text = " = ".join(parts)
    if verify:
        mark = _verify_mark(d, v, u)
        if mark:
            text += (" " + mark) if not style.latex else rf"\ {_latex_mark(mark)}"
    return text


def _has_op(text):
    return any(ch.isdigit() for ch in text) and any(op in text for op in "+-×·/()^²√")


def _elementwise_local(d, v, u):
    path = d.segments(v, u)
    if len(path) == 1 and len(path[0]) == 1:
        s, i = path[0][0]
        return s.local[i]
    return None


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


def _latex_mark(mark):
    return r"\checkmark" if mark == "✓" else rf"\text{{{mark}}}"


def _product(d, vals, style):
    out = []
    for k, x in enumerate(vals):
        t = d.gnum(x)
        out.append(f"({t})" if k and t.startswith("-") else t)
    return style.times.join(out)


def chains(d):
    blocks = [("heading", "Chain rule")]
    root = d.rec.root
    for p in d.rec.params():
        seqs, count = d.stop_paths(p)
        if p.grad is None:
            blocks.append(("para", f"{p.name}: the gradient does not reach it."))
            continue
        top_t = TEXT.frac(root.name, p.name)
        top_l = LATEX.frac(LATEX.name(root.name), LATEX.name(p.name))
        if seqs is None:
            what = f"Σ over {count} paths" if count > 1 else "product along one long path"
            lwhat = (rf"\sum_{{{count}\ \text{{paths}}}}" if count > 1 else
                     r"\prod_{\text{one long path}}")
            blocks.append(("math", f"{top_t} = {what} = {d.show(d.gvalue(p.grad))}",
                           rf"{top_l} = {lwhat} = {_latex_value(d.show(d.gvalue(p.grad)))}"))
            continue
        scalar = all(v.scalar for seq in seqs for v in seq)
        sym_t = " + ".join(TEXT.dot.join(TEXT.frac(a.name, b.name) for a, b in zip(s, s[1:]))
                           for s in seqs)
        sym_l = " + ".join(LATEX.dot.join(LATEX.frac(LATEX.name(a.name), LATEX.name(b.name))
                                          for a, b in zip(s, s[1:])) for s in seqs)
        text, latex = [top_t, sym_t], [top_l, sym_l]
        if scalar:
            prod_t, prod_l = [], []
            for s in seqs:
                vals = [d.factor(a, b)[1] for a, b in zip(s, s[1:])]
                prod_t.append(_product(d, vals, TEXT))
                prod_l.append(_product(d, vals, LATEX))
            text.append(" + ".join(f"({x})" if len(seqs) > 1 and "×" in x else x
                                   for x in prod_t))
            latex.append(" + ".join(f"({x})" if len(seqs) > 1 and "times" in x else x
                                    for x in prod_l))
            if len(seqs) > 1:
                terms = [float(_seq_value(d, s)) for s in seqs]
                text.append(" + ".join(_paren_neg(d.gnum(t), k) for k, t in enumerate(terms)))
                latex.append(text[-1])
        shown = d.show(d.gvalue(p.grad))
        text.append(shown)
        latex.append(_latex_value(shown))
        blocks.append(("math", " = ".join(text), " = ".join(latex)))
        if len(seqs) > 1:
            blocks.append(("para", f"{len(seqs)} paths lead from {root.name} to {p.name}; "
                                   "the chain rule adds their products."))
    return blocks


def _seq_value(d, seq):
    out = 1.0
    for a, b in zip(seq, seq[1:]):
        out *= d.factor(a, b)[1]
    return out


def _paren_neg(t, k):
    return f"({t})" if k and t.startswith("-") else t


def gradients(d):
    """Every parameter's gradient (the table a tensor-valued network needs)."""
    rows = []
    for p in d.rec.params():
        g = "—" if p.grad is None else d.show(d.gvalue(p.grad))
        shape = "scalar" if p.scalar else str(tuple(p.value.shape))
        rows.append(((p.name, shape, g),
                     (LATEX.name(p.name), shape, _latex_value(g))))
    return [("heading", "Gradients"), ("table", ("parameter", "shape", "gradient"), rows)]


def update(d, upd):
    blocks = [("heading", "Update step")]
    blocks.append(("para", upd.describe()))
    for line in upd.lines:
        blocks.append(("math", line.text(d), line.latex(d)))
    return blocks
