"""A picture of the computational graph: DOT text always, SVG/PNG through graphviz.

Leaves are boxes (parameters green, inputs grey), primitives are ellipses labelled with the
op and the value it produced; every value shows its gradient ∂L/∂value. Edges point the way
the forward pass ran. With `highlight="w_o"`, every path from that parameter to the loss is
drawn in red: the chain rule's product runs along exactly those edges.
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np

from ..errors import ChainruleError
from . import fmt

INSTALL_HINT = ("graphviz is needed to draw the graph: install the `dot` program (e.g. "
                "`apt-get install graphviz` or `brew install graphviz`) and optionally "
                "`pip install graphviz`; meanwhile `.dot` holds the DOT text, which any "
                "Graphviz viewer (or https://dreampuf.github.io/GraphvizOnline) can draw.")


class Graph:
    def __init__(self, rep, highlight=None):
        self.rep = rep
        self.highlight = highlight
        self.dot = self._dot()

    def _path_values(self):
        """Indices of the values and the steps on paths from `highlight` to the loss."""
        if self.highlight is None:
            return set(), set()
        rec = self.rep.rec
        target = [v for v in rec.values if v.name == self.highlight]
        if not target:
            known = ", ".join(p.name for p in rec.params())
            raise ChainruleError(f"graph(highlight={self.highlight!r}): no such value; the "
                                 f"parameters are {known}")
        on = {target[0].index}
        for step in rec.steps:          # forward order: a step is on a path if an input is
            if any(v.index in on for v in step.inputs):
                on.add(step.out.index)
        back = {rec.root.index}         # and it must also reach the loss
        for step in reversed(rec.steps):
            if step.out.index in back:
                back.update(v.index for v in step.inputs)
        values = on & back
        return values, {s.out.index for s in rec.steps if s.out.index in values}

    def _dot(self):
        rep, d = self.rep, self.rep.d
        values, _ = self._path_values()
        lines = ["digraph chainrule {", '  rankdir=LR;',
                 '  node [fontname="Helvetica", fontsize=11];',
                 '  edge [color="#555555"];']
        for v in rep.rec.values:
            if not (v.is_leaf and v.name is None):
                lines.append(f"  v{v.index} [{_node_attrs(d, v, v.index in values)}];")
        for k, step in enumerate(rep.rec.steps):
            for i, v in enumerate(step.inputs):
                if v.is_leaf and v.name is None:   # a constant: drawn at each use
                    label = d.num(v.value) if v.scalar else "const"
                    lines.append(f'  c{k}_{i} [label="{_esc(label)}", shape=plaintext];')
                    lines.append(f"  c{k}_{i} -> v{step.out.index};")
                    continue
                attrs = []
                local = step.local[i]
                if local is not None and local.size == 1 and v.name is not None:
                    attrs.append(f'label="{_esc(_short(d, local))}", fontsize=9, '
                                 'fontcolor="#555555"')
                if v.index in values and step.out.index in values:
                    attrs.append('color="#d62728", penwidth=2.2')
                style = f" [{', '.join(attrs)}]" if attrs else ""
                lines.append(f"  v{v.index} -> v{step.out.index}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path):
        """Write the picture to `path` (.svg, .png, .pdf or .dot), atomically."""
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext == "dot":
            data = self.dot.encode()
        elif ext in ("svg", "png", "pdf"):
            data = render_bytes(self.dot, ext)
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


def _node_attrs(d, v, hot):
    op = None if v.is_leaf else v.step.prim.symbol     # the registry's short operator
    lines = [v.name if op is None else f"{v.name} = {op}" if v.name else op]
    top = d.rec.root.name
    what = f"∂{top}/∂{v.name}" if v.name else "grad"
    if v.scalar:
        lines.append(f"= {_short(d, v.value)}")
        if v.grad is not None:
            lines.append(f"{what} = {_short(d, d.gvalue(v.grad))}")
    else:
        lines.append(f"shape {tuple(v.value.shape)}")
        if v.grad is not None:
            norm = float(np.linalg.norm(np.asarray(v.grad, dtype=np.float64)))
            lines.append(f"‖{what}‖ = {fmt.num(norm, 4)}")
    label = "\\n".join(_esc(x) for x in lines)
    if v.is_leaf:
        fill = "#d9f2d9" if v.is_param else "#eeeeee"
        attrs = f'label="{label}", shape=box, style="rounded,filled", fillcolor="{fill}"'
    else:
        attrs = f'label="{label}", shape=ellipse, style=filled, fillcolor="#dde8f8"'
    if hot:
        attrs += ', color="#d62728", penwidth=2.2'
    return attrs


def _short(d, arr):
    if arr.size == 1:
        return fmt.num(arr.reshape(()), min(d.digits, 8))
    return f"{tuple(arr.shape)}"


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
            raise ChainruleError(f"graph: {exc}. {INSTALL_HINT}") from exc
    exe = shutil.which("dot")
    if exe is None:
        raise ChainruleError(f"graph: cannot render {fmt_}. {INSTALL_HINT}")
    res = subprocess.run([exe, f"-T{fmt_}"], input=dot.encode(), capture_output=True,
                         check=False)
    if res.returncode != 0:
        raise ChainruleError(f"graph: dot failed: {res.stderr.decode(errors='replace')}")
    return res.stdout


def write_atomic(path, data):
    """Write `data` to `path` via a temporary file in the same folder (never half-written)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".chainrule-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes it private; give it normal rights
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
