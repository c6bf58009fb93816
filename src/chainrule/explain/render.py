"""Blocks (see sections.py) to plain text, Markdown with LaTeX math, LaTeX, or HTML."""
import html


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
            header, rows = b[1], [r[1] for r in b[2]]
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            for r in rows:
                out.append("| " + " | ".join(_md_cell(c, i, header) for i, c in enumerate(r))
                           + " |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md_cell(cell, i, header):
    if header[0] == "parameter" and i == 1:   # the shape column is plain text
        return cell
    return f"${cell}$".replace("|", r"\vert ")


def latex(blocks):
    """A LaTeX fragment: headings as \\paragraph, derivation lines in one align* each."""
    out = []
    for b in blocks:
        kind = b[0]
        if kind in LEVEL:
            cmd = {"chapter": "section*", "title": "subsection*", "heading": "paragraph"}[kind]
            out.append(rf"\{cmd}{{{_latex_escape(b[1])}}}")
        elif kind == "para":
            out.append(_latex_escape(b[1]))
        elif kind == "math":
            out.append(r"\begin{align*}" + "\n" + _align(b[2]) + "\n" + r"\end{align*}")
        elif kind == "table":
            out.append(r"\begin{align*}")
            rows = [r[1] for r in b[2]]
            out.append(" \\\\\n".join(" &\\quad ".join(r) for r in rows))
            out.append(r"\end{align*}")
    return "\n".join(out) + "\n"


def _align(line):
    head, sep, rest = line.partition(" = ")
    return f"{head} &= {rest}" if sep else line


def _latex_escape(s):
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("#", r"\#"),
                 ("&", r"\&"), ("$", r"\$")):
        s = s.replace(a, b)
    return s


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
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
                       + "</tr>")
            for r in b[2]:
                out.append("<tr>" + "".join(f"<td>\\({html.escape(c)}\\)</td>" for c in r[1])
                           + "</tr>")
            out.append("</table>")
    out.append("</div>")
    return "\n".join(out)
