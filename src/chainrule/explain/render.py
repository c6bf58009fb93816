"""Blocks (see sections.py) to plain text, Markdown with LaTeX math, LaTeX, or HTML.

Markdown and HTML write a table of formulas as one display-math array (`\\begin{array}`), not
as a Markdown table of inline-math cells: a notebook squeezes such cells until the math wraps
one term per line. LaTeX output is ASCII only (every Greek letter, ∂, −, ⊙, ✓ … becomes a
command), so pdflatex compiles it; `latex(blocks, standalone=True)` is a complete document.
"""
import html
import re

UNDERLINE = {"chapter": "=", "title": "=", "heading": "-"}
LEVEL = {"chapter": "#", "title": "##", "heading": "###"}


def text(blocks):
    out = []
    for b in blocks:
        kind = b[0]
        if kind in UNDERLINE:
            if out and out[-1]:
                out.append("")
            if kind == "chapter":
                out.append("=" * len(b[1]))
            out.append(b[1])
            out.append(UNDERLINE[kind] * len(b[1]))
            if kind != "heading":
                out.append("")
        elif kind == "para":
            out.append(b[1])
        elif kind == "math":
            out.append("  " + b[1])
        elif kind == "table":
            out.extend(_text_table(b[1], [r[0] for r in b[2]]))
    return "\n".join(out) + "\n"


def _text_table(header, rows):
    if not rows:
        return ["  (none)"]
    if len(header) == 2:  # function | derivatives: one row each, aligned at the bar
        width = max(len(r[0]) for r in rows)
        return [f"  {r[0]:<{width}} | {r[1]}" for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  " + "  ".join(f"{h:<{w}}" for h, w in zip(header, widths))]
    lines += ["  " + "  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) for r in rows]
    return lines


def math_array(header, rows):
    """A table of formulas as one LaTeX array (header in upright text)."""
    cols = "l" + "|l" * (len(header) - 1)
    head = " & ".join(rf"\text{{{h}}}" for h in header)
    body = [" & ".join(_cell(c, i, header) for i, c in enumerate(r)) for r in rows]
    return "\\begin{array}{" + cols + "}\n" + head + r" \\ \hline" + "\n" + \
        " \\\\\n".join(body) + "\n\\end{array}"


def _cell(cell, i, header):
    if header[0] == "parameter" and i == 1:   # the shape column is plain text
        return rf"\text{{{cell}}}"
    return cell


def markdown(blocks):
    out = []
    for b in blocks:
        kind = b[0]
        if kind in LEVEL:
            out += [f"{LEVEL[kind]} {b[1]}", ""]
        elif kind == "para":
            out += [b[1], ""]
        elif kind == "math":
            out += [f"$${b[2]}$$", ""]
        elif kind == "table":
            rows = [r[1] for r in b[2]]
            if rows:
                out += ["$$", math_array(b[1], rows), "$$", ""]
    return "\n".join(out).rstrip() + "\n"


PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb}
\usepackage[a4paper,landscape,margin=1.5cm]{geometry}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.4em}
\begin{document}
\small
"""


def latex(blocks, standalone=False):
    """A LaTeX fragment (needs amsmath and amssymb): headings as \\section* / \\subsection* /
    \\paragraph, derivation lines in one align* each; ASCII only. `standalone`: a complete
    document for pdflatex."""
    out = []
    for b in blocks:
        kind = b[0]
        if kind in LEVEL:
            cmd = {"chapter": "section*", "title": "subsection*", "heading": "paragraph"}[kind]
            out.append(rf"\{cmd}{{{text_escape(b[1])}}}")
        elif kind == "para":
            out.append(text_escape(b[1]))
            out.append("")
        elif kind == "math":
            out.append(r"\begin{align*}" + "\n" + _align(b[2]) + "\n" + r"\end{align*}")
        elif kind == "table":
            rows = [r[1] for r in b[2]]
            if rows:
                out.append(r"\begin{align*}")
                out.append(" \\\\\n".join(" &\\quad ".join(r) for r in rows))
                out.append(r"\end{align*}")
    body = ascii_latex("\n".join(out) + "\n")
    if standalone:
        return PREAMBLE + body + "\\end{document}\n"
    return body


def _align(line):
    head, sep, rest = line.partition(" = ")
    return f"{head} &= {rest}" if sep else line


_TEXT_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "#": r"\#", "&": r"\&",
                 "$": r"\$", "^": r"\^{}", "~": r"\~{}", "{": r"\{", "}": r"\}"}


def text_escape(s):
    """Prose for LaTeX text mode: its special characters escaped."""
    return re.sub(r"[\\_%#&$^~{}]", lambda m: _TEXT_SPECIAL[m.group()], s)


# Every non-ASCII character chainrule writes, as a command that works in text and math mode.
_UNICODE = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon",
    "η": r"\eta", "θ": r"\theta", "λ": r"\lambda", "μ": r"\mu", "π": r"\pi", "σ": r"\sigma",
    "τ": r"\tau", "φ": r"\phi", "ω": r"\omega", "Σ": r"\Sigma", "Δ": r"\Delta",
    "∂": r"\partial", "∇": r"\nabla", "×": r"\times", "·": r"\cdot", "−": "-", "⊙": r"\odot",
    "≤": r"\le", "≥": r"\ge", "≠": r"\ne", "≈": r"\approx", "→": r"\to", "←": r"\leftarrow",
    "∞": r"\infty", "√": r"\surd", "⋆": r"\star", "∫": r"\int", "‖": r"\|", "…": r"\dots",
    "½": r"\tfrac12", "✓": r"\checkmark", "✗": r"\times", "∈": r"\in", "±": r"\pm",
    "ᵀ": r"^{\top}", "²": "^{2}", "³": "^{3}", "¹": "^{1}", "⁰": "^{0}", "⁽": "^{(}",
    "⁾": "^{)}", "ⁱ": "^{i}", "ⁿ": "^{n}", "ᵗ": "^{t}", "ᵢ": "_{i}", "ⱼ": "_{j}", "ₙ": "_{n}",
    "₀": "_{0}", "₁": "_{1}", "₂": "_{2}", "₃": "_{3}", "₄": "_{4}", "ˣ": "^{x}",
    "ŷ": r"\hat{y}", "′": "'", "″": "''", "⌊": r"\lfloor", "⌋": r"\rfloor",
}
_TEXT_ONLY = {"“": "``", "”": "''", "‘": "`", "’": "'", "—": "---", "–": "--", "⚠": "(!)",
              "\u00a0": "~"}


def ascii_latex(s):
    """LaTeX with every non-ASCII character replaced by an equivalent (ASCII) command."""
    s = re.sub("(.)\u0302", lambda m: rf"\ensuremath{{\hat{{{m.group(1)}}}}}", s)  # m̂
    out = []
    for ch in s:
        if ord(ch) < 128:
            out.append(ch)
        elif ch in _TEXT_ONLY:
            out.append(_TEXT_ONLY[ch])
        elif ch in _UNICODE:
            cmd = _UNICODE[ch]
            out.append(rf"\ensuremath{{{cmd}}}" if cmd.startswith(("\\", "^", "_")) else cmd)
        else:
            out.append(r"\ensuremath{\square}")
    return "".join(out)


def html_page(blocks):
    """HTML for Jupyter: the Markdown's math in MathJax delimiters, inside a <div>."""
    out = ["<div class='chainrule-explain'>"]
    for b in blocks:
        kind = b[0]
        if kind in LEVEL:
            tag = {"chapter": "h2", "title": "h3", "heading": "h4"}[kind]
            out.append(f"<{tag}>{html.escape(b[1])}</{tag}>")
        elif kind == "para":
            out.append(f"<p>{html.escape(b[1])}</p>")
        elif kind == "math":
            out.append(f"<p>$${html.escape(b[2])}$$</p>")
        elif kind == "table":
            rows = [r[1] for r in b[2]]
            if rows:
                out.append("<div style='overflow-x:auto'>$$" +
                           html.escape(math_array(b[1], rows)) + "$$</div>")
    out.append("</div>")
    return "\n".join(out)
