"""A picture of the computational graph: DOT text always, SVG/PNG through graphviz.

Leaves are boxes (parameters green, inputs grey), primitives are ellipses labelled with the
op and the value it produced; every value shows its gradient ∂L/∂value. Edges point the way
the forward pass ran. With `highlight="w_o"`, every path from that parameter to the loss is
drawn in red: the chain rule's product runs along exactly those edges.
"""
import os
import shutil
import subprocess
import warnings

import numpy as np

from ..errors import ChainruleError
from . import fmt

INSTALL_HINT = ("graphviz is needed to draw the graph: install the `dot` program (e.g. "
                "`apt-get install graphviz` or `brew install graphviz`) and optionally "
                "`pip install graphviz`; meanwhile `.dot` holds the DOT text, which any "
                "Graphviz viewer (or https://dreampuf.github.io/GraphvizOnline) can draw.")


class GraphvizMissing(ChainruleError):
    """Neither the graphviz package nor the `dot` program can render a picture here."""


class GraphvizWarning(UserWarning):
    """A picture was asked for without graphviz: its DOT text was written instead."""


class Graph:
    """The computational graph of an explanation, drawn from its data model (`to_dict()`)."""

    def __init__(self, rep, highlight=None):
        self.rep = rep
        self.highlight = highlight
        self.model = rep.to_dict()
        self.dot = self._dot()

    def _path_values(self):
        """Indices of the values on paths from `highlight` to the loss."""
        if self.highlight is None:
            return set()
        m = self.model
        target = [n for n in m["nodes"] if n["name"] == self.highlight]
        if not target:
            known = ", ".join(n["name"] for n in m["nodes"] if n["role"] == "parameter")
            raise ChainruleError(f"graph(highlight={self.highlight!r}): no such value; the "
                                 f"parameters are {known}")
        on = {target[0]["id"]}
        ops = [n for n in m["nodes"] if n["op"] is not None]
        for n in ops:                   # forward order: a node is on a path if an input is
            if any(i in on for i in n["inputs"]):
                on.add(n["id"])
        back = {m["loss"]["node"]}       # and it must also reach the loss
        for n in reversed(ops):
            if n["id"] in back:
                back.update(n["inputs"])
        return on & back

    def _dot(self):
        m = self.model
        values = self._path_values()
        decimals = m["settings"]["grad_decimals"]
        digits = min(m["settings"]["digits"], 8)
        nodes = {n["id"]: n for n in m["nodes"]}
        local = {(e["from"], e["to"], e["input"]): e["local"] for e in m["edges"]}
        top = m["loss"]["name"]
        lines = ["digraph chainrule {", '  rankdir=LR;',
                 '  node [fontname="Helvetica", fontsize=11];',
                 '  edge [color="#555555"];']
        for n in m["nodes"]:
            if not _constant(n):
                lines.append(f"  v{n['id']} [{_node_attrs(n, top, decimals, digits, n['id'] in values)}];")
        for k, n in enumerate(x for x in m["nodes"] if x["op"] is not None):
            for i, src in enumerate(n["inputs"]):
                u = nodes[src]
                if _constant(u):                # a constant: drawn at each use
                    label = _short(u["value"], digits) if not u["shape"] else "const"
                    lines.append(f'  c{n["id"]}_{i} [label="{_esc(label)}", shape=plaintext];')
                    lines.append(f"  c{n['id']}_{i} -> v{n['id']};")
                    continue
                attrs = []
                loc = local.get((src, n["id"], i))
                if loc is not None and not isinstance(loc, list) and u["name"] is not None:
                    attrs.append(f'label="{_esc(_short(loc, digits))}", fontsize=9, '
                                 'fontcolor="#555555"')
                if src in values and n["id"] in values:
                    attrs.append('color="#d62728", penwidth=2.2')
                style = f" [{', '.join(attrs)}]" if attrs else ""
                lines.append(f"  v{src} -> v{n['id']}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path, fallback=True):
        """Write the picture to `path` (.svg, .png, .pdf or .dot), atomically, and return the
        path written. Without graphviz (the `dot` program), a picture cannot be drawn: with
        `fallback` (the default) the DOT text is written next to it as `<name>.dot`, a
        GraphvizWarning says how to render it, and that path is returned; with
        fallback=False a ChainruleError says how to install graphviz."""
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext == "dot":
            data = self.dot.encode()
        elif ext in ("svg", "png", "pdf"):
            try:
                data = render_bytes(self.dot, ext)
            except GraphvizMissing:
                if not fallback:
                    raise
                dot_path = os.path.splitext(path)[0] + ".dot"
                write_atomic(dot_path, self.dot.encode())
                warnings.warn(render_hint(dot_path, path, ext), GraphvizWarning, stacklevel=2)
                return dot_path
        else:
            raise ChainruleError(f"graph.save: unknown extension {ext!r} in {path!r}; use .svg, "
                                 ".png, .pdf or .dot")
        write_atomic(path, data)
        return path

    def _repr_svg_(self):
        try:
            return render_bytes(self.dot, "svg").decode()
        except ChainruleError:
            return None

    def __str__(self):
        return self.dot


def render_hint(dot_path, path, ext):
    """What to say when a .dot file was written in place of a picture."""
    return (f"graphviz's `dot` program is not installed, so {path} was not drawn; its graph "
            f"was written to {dot_path}. Render it with `dot -T{ext} {dot_path} -o {path}` "
            "once graphviz is installed (`apt-get install graphviz` or `brew install "
            "graphviz`), or paste the file into any Graphviz viewer "
            "(e.g. https://dreampuf.github.io/GraphvizOnline).")


def _constant(n):
    return n["op"] is None and n["role"] in ("constant", "hidden")


def _node_attrs(n, top, decimals, digits, hot):
    op = n["symbol"]
    name = n["name"]
    lines = [name if op is None else f"{name} = {op}" if name else op]
    what = f"∂{top}/∂{name}" if name else "grad"
    grad = n["grad"]
    if not n["shape"] or _size(n["shape"]) == 1:
        lines.append(f"= {_short(n['value'], digits)}")
        if grad is not None:
            g = _scalar(grad)
            if decimals is not None and isinstance(g, float):
                g = round(g, decimals)
            lines.append(f"{what} = {_short(g, digits)}")
    else:
        lines.append(f"shape {tuple(n['shape'])}")
        if grad is not None:
            arr = np.asarray(_floats(grad), dtype=np.float64)
            lines.append(f"‖{what}‖ = {fmt.num(float(np.linalg.norm(arr)), 4)}")
    label = "\\n".join(_esc(x) for x in lines)
    if n["op"] is None:
        fill = "#d9f2d9" if n["role"] == "parameter" else "#eeeeee"
        attrs = f'label="{label}", shape=box, style="rounded,filled", fillcolor="{fill}"'
    else:
        attrs = f'label="{label}", shape=ellipse, style=filled, fillcolor="#dde8f8"'
    if hot:
        attrs += ', color="#d62728", penwidth=2.2'
    return attrs


def _size(shape):
    out = 1
    for k in shape:
        out *= k
    return out


def _floats(x):
    if isinstance(x, list):
        return [_floats(v) for v in x]
    return float(x) if isinstance(x, str) else x


def _scalar(x):
    while isinstance(x, list):
        x = x[0]
    return float(x) if isinstance(x, str) else x


def _short(x, digits):
    x = _scalar(x)
    return fmt.num(x, digits)


def _esc(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def render_bytes(dot, fmt_):
    """DOT text to image bytes with the graphviz package, or the `dot` program."""
    try:
        import graphviz
        return graphviz.Source(dot).pipe(format=fmt_)
    except ImportError:
        pass
    except Exception as exc:  # the package is there but the `dot` program is not
        if shutil.which("dot") is None:
            raise GraphvizMissing(f"graph: {exc}. {INSTALL_HINT}") from exc
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(f"graph: cannot render {fmt_}. {INSTALL_HINT}")
    res = subprocess.run([exe, f"-T{fmt_}"], input=dot.encode(), capture_output=True,
                         check=False)
    if res.returncode != 0:
        raise ChainruleError(f"graph: dot failed: {res.stderr.decode(errors='replace')}")
    return res.stdout


def write_atomic(path, data):
    """Write `data` to `path` never half-written (io.atomic_write), creating its folder."""
    from ..io import atomic_write
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, data)
