"""The derivation as blocks, built from the data model (model.py), that every renderer shares.

A block is one of
    ("chapter", title) / ("title", title) / ("heading", title)     three levels of headings
    ("para", text)                              prose, the same in every format
    ("math", text, latex)                       one derivation line
    ("table", header, rows)                     rows of (text cells, latex cells)
so the plain-text, Markdown and LaTeX outputs cannot drift apart: they format the same blocks,
and the blocks only read the model. With `blanks` (a worksheet), every number that is the
value of a hidden quantity becomes a numbered blank.
"""


def blank_text(n):
    return f"[__{n}__]"


def blank_latex(n):
    return rf"\boxed{{\,{n}\,}}"


def _fill(ln, key, blanks, note=True, sep="    "):
    """A model line's text (key 'text') or LaTeX (key 'latex'), blanks put in."""
    s = ln[key]
    refs = ln["refs" if key == "text" else "latex_refs"]
    if blanks:
        for start, end, q in sorted(refs, reverse=True):
            if q in blanks:
                if s[start - 1:start] == "(" and s[end:end + 1] == ")" and \
                        s[start - 2:start - 1] in ("", " "):
                    start, end = start - 1, end + 1    # "× (-0.21)": the brackets tell the sign
                s = s[:start] + (blank_text if key == "text" else blank_latex)(blanks[q]) + \
                    s[end:]
    if note and ln.get("note") and not (blanks and ln.get("note_of") in blanks):
        if key == "text":
            s += f"{sep}({ln['note']})"
        else:
            from .render import text_escape
            s += rf" \quad \text{{({text_escape(ln['note'])})}}"
    return s


def math(ln, blanks=None):
    return ("math", _fill(ln, "text", blanks), _fill(ln, "latex", blanks))


def blocks(m, blanks=None, parts=("notes", "forward", "local", "chain", "paths", "layers",
                                  "gradients", "update")):
    """The blocks of model `m` (optionally only some parts: a worksheet leaves out the layer
    view and the gradients table, whose numbers would give answers away)."""
    out = [("title", m["title"])]
    if m.get("nan"):
        out.append(("para", "⚠ " + m["nan"]["message"]))
    if "notes" in parts:
        for note in m["notes"]:
            out.append(("para", note))
    if "forward" in parts:
        out.append(("heading", "Forward pass"))
        out += [math(ln, blanks) for ln in m["forward"]]
    if "local" in parts:
        out += local_table(m, blanks)
    if "chain" in parts:
        out += chains(m, blanks)
    if "paths" in parts and m["path_sums"]:
        out.append(("heading", "Sums over paths"))
        for ps in m["path_sums"]:
            out.append(math(ps["line"], blanks))
            out.append(("para", ps["note"] + "."))
    if "layers" in parts and m["layers"]:
        from .layers import layer_blocks
        out += layer_blocks(m)
    if "gradients" in parts and any(g["shape"] != "scalar" for g in m["gradients"]):
        rows = [(tuple(g["cells"]), tuple(g["latex_cells"])) for g in m["gradients"]]
        out += [("heading", "Gradients"), ("table", ("parameter", "shape", "gradient"), rows)]
    if "update" in parts:
        for upd in m["updates"]:
            out.append(("heading", "Update step"))
            out.append(("para", upd["description"]))
            for ln in upd["lines"]:
                out.append(math(ln, blanks))
    return out


def local_table(m, blanks=None):
    out = [("heading", "Local derivatives")]
    rows, notes = [], []
    for row in m["steps"]:
        f_t, f_l = row["function"]["text"], row["function"]["latex"]
        cells_t = ";  ".join(_fill(c, "text", blanks, sep=" ") for c in row["cells"])
        cells_l = r",\quad ".join(_fill(c, "latex", blanks, sep=" ") for c in row["cells"])
        rows.append(((f_t, cells_t), (f_l, cells_l)))
        notes += [math(n, blanks) for n in row.get("notes", [])]
    out.append(("table", ("function", "local derivatives"), rows))
    out += notes
    if m["settings"]["verified"]:
        note = ("✓ / ✗: each local derivative rule checked against a float64 central finite "
                "difference at this node's input values")
        if m["settings"]["round"] is not None:
            note += (" (with the unrounded function values, so a rule is judged, not the "
                     "rounding)")
        out.append(("para", note + "."))
    return out


def chains(m, blanks=None):
    out = [("heading", "Chain rule")]
    for c in m["chains"]:
        if c["line"] is None:
            out.append(("para", c["note"]))
            continue
        out.append(math(c["line"], blanks))
        if c["note"]:
            out.append(("para", c["note"]))
    return out
