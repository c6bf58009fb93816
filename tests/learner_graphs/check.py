"""Number-by-number checks of an explanation against expected values (see __init__.py)."""
import ast
import json
import re

import numpy as np

from chainrule.explain import render


def model_lines(m):
    """Every derivation line of model `m`, with how it is laid out: 'math' or 'cell'."""
    out = [("math", ln) for ln in m["forward"]]
    for row in m["steps"]:
        out += [("cell", c) for c in row["cells"]]
        out += [("math", n) for n in row.get("notes", [])]
    out += [("math", c["line"]) for c in m["chains"] if c["line"]]
    out += [("math", p["line"]) for p in m["path_sums"]]
    for layer in m["layers"]:
        out += [("math", ln) for ln in layer["lines"] if ln["latex"] is not None]
    for u in m["updates"]:
        out += [("math", ln) for ln in u["lines"]]
    return out


def parse(text):
    """A shown number or nested list of numbers, as a float array."""
    t = text.replace("nan", "'nan'").replace("inf", "'inf'")
    value = ast.literal_eval(t)
    return np.asarray(_floats(value), dtype=np.float64)


def _floats(x):
    if isinstance(x, (list, tuple)):
        return [_floats(v) for v in x]
    return float(x)


def _close(shown, expected, rtol):
    shown, expected = np.asarray(shown, np.float64), np.asarray(expected, np.float64)
    if shown.shape != expected.shape and shown.size == 1:
        shown = np.broadcast_to(shown, expected.shape)
    return shown.shape == expected.shape and np.allclose(shown, expected, rtol=rtol,
                                                        atol=rtol * 1e-3, equal_nan=True)


def check(rep, expected, rtol=1e-6, shown_rtol=2e-5):
    """Assert that every quantity in `expected` ({label: value}) is in the explanation with
    that value: in to_dict()'s quantities, in every line that shows it (the number is read
    back from the line), and that those lines are in the text, Markdown and LaTeX outputs.
    Returns the number of numbers checked."""
    m = rep.to_dict()
    json.loads(rep.to_json())                     # JSON-ready, no NaN literals
    text, md, tex = rep.text(), rep.markdown(), rep.latex()
    assert tex.isascii(), "LaTeX output must be ASCII for pdflatex"
    lines = model_lines(m)
    checked = 0
    for label, value in expected.items():
        q = m["quantities"].get(label)
        assert q is not None, f"{label!r} is not a quantity; have {sorted(m['quantities'])}"
        assert q["value"] is not None, label
        got = parse(json.dumps(q["value"]).replace('"', ""))
        assert _close(got, value, rtol), f"{label}: model {got} vs NumPy {value}"
        seen = 0
        for layout, ln in lines:
            for start, end, ql in ln["refs"]:
                if ql != label:
                    continue
                span = ln["text"][start:end]
                if span.startswith("tensor("):
                    continue
                assert _close(parse(span), value, shown_rtol), \
                    f"{label}: shown {span!r} in {ln['text']!r} vs NumPy {value}"
                seen += 1
                checked += 1
            if any(ql == label for *_, ql in ln["refs"]):
                assert ln["text"] in text, f"text output lacks {ln['text']!r}"
                latex = ln["latex"]
                if layout == "math":
                    assert "$$" + latex in md, f"Markdown lacks {latex!r}"
                    assert render.ascii_latex(_align(latex)) in tex, f"LaTeX lacks {latex!r}"
                else:
                    assert latex in md and render.ascii_latex(latex) in tex, latex
        assert seen, f"{label} is not shown in any line"
    return checked


def _align(line):
    head, sep, rest = line.partition(" = ")
    return f"{head} &= {rest}" if sep else line


def numbers_in(text):
    """Every decimal number in `text`, as floats (for spot checks)."""
    return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", text)]
