"""The layer view: deltas per layer for networks of linear layers, convolutions and activations.

Layers are found in the recorded graph itself, not in module objects, so a hand-written
`sigmoid(x @ W.T + b)` reads the same as `nn.Sequential(nn.Linear(...), nn.Sigmoid())`:
a 2-D parameter W multiplied with an input (x @ Wᵀ as nn.Linear does, W @ x column-vector
style, or X @ W), optionally plus a 1-D parameter b, is a layer's pre-activation z; a
4-D kernel multiplied with the windows of an image is a convolution layer; a following σ,
tanh or ReLU gives its activation a. Which primitive plays which part is the registry's
`layer_role` and `activation`.

Every number shown is the engine's: δ = ∂L/∂z is the gradient the backward pass delivered at
z. The textbook formulas are written in the layer's own layout, so that they are shape-correct
as written (for a batch X @ W: ∂L/∂W = Xᵀ δ and δ_prev = f'(Z) ⊙ (δ Wᵀ); for nn.Linear's
X Wᵀ: ∂L/∂W = δᵀ X; for one column vector: ∂L/∂W = δ xᵀ and δ_prev = f'(z) ⊙ (Wᵀ δ)), then
evaluated from the engine's numbers and compared with the engine's results: ✓ only when the
formula's result has the shape of the engine's and the same numbers, which is how a learner
sees that the formulas *are* backpropagation.
"""
import numpy as np

from . import fmt
from .derive import LATEX, TEXT, latex_value


class Layer:
    __slots__ = ("W", "b", "x", "z", "act", "a", "layout", "mm", "geometry")

    def __init__(self, W, b, x, z, act, a, layout, mm, geometry=None):
        self.W, self.b, self.x, self.z, self.act, self.a = W, b, x, z, act, a
        self.layout, self.mm = layout, mm   # layout: 'xWt' (nn.Linear), 'Wx', 'xW' or 'conv'
        self.geometry = geometry

    @property
    def out(self):
        return self.a if self.a is not None else self.z

    def label(self):
        name = self.W.name or "W"
        return name[:-len(".weight")] if name.endswith(".weight") else name


def _consumers(rec):
    cons = {}
    for step in rec.steps:
        for i, v in enumerate(step.inputs):
            cons.setdefault(v.index, []).append((step, i))
    return cons


def _moves(step):
    p = step.prim
    return (p.linear and not p.variadic and len(step.inputs) == 1 and not p.elementwise
            and p.layer_role is None and p.algebra is None)


def find_layers(rec):
    """The linear and convolution layers of the recorded graph, in forward order."""
    cons = _consumers(rec)
    layers = []
    for W in rec.values:
        if not W.is_param:
            continue
        if W.value.ndim == 2:
            for step, i in cons.get(W.index, []):
                for found in _matmul_of(step, i, cons):
                    layers.append(_complete(W, *found, cons))
        elif W.value.ndim == 4:
            found = _conv_of(W, cons)
            if found is not None:
                layers.append(found)
    layers.sort(key=lambda layer: layer.z.index)
    return layers


def _matmul_of(step, i, cons):
    """Every product in which the weight (input i of `step`) is a layer's matrix: (product
    step, the layer's input, layout) each; a weight reused (an RNN's time steps) gives one
    per use."""
    role = step.prim.layer_role
    if role == "affine" and i == 1:      # the fused x @ Wᵀ + b
        return [(step, step.inputs[0], "xWt")]
    if role == "transposed" and step.out.value.ndim == 2:
        return [(s2, s2.inputs[0], "xWt") for s2, j in cons.get(step.out.index, [])
                if s2.prim.layer_role == "product" and j == 1]
    if role == "product":
        return [(step, step.inputs[1], "Wx") if i == 0 else (step, step.inputs[0], "xW")]
    return []


def _complete(W, mm, x, layout, cons, geometry=None, z=None):
    z, b = (mm.out if z is None else z), None
    if mm.prim.layer_role in ("affine", "convolution") and len(mm.inputs) > 2 and \
            mm.inputs[2].is_param:
        b = mm.inputs[2]
    after = cons.get(z.index, [])
    if b is None and len(after) == 1 and after[0][0].prim.layer_role == "bias":
        add = after[0][0]
        other = add.inputs[1 - after[0][1]]
        if other.is_param and other.value.ndim in (1, 2):
            z, b = add.out, other
    act = a = None
    after = cons.get(z.index, [])
    if len(after) == 1 and after[0][0].prim.activation is not None:
        act = after[0][0]
        a = act.out
    return Layer(W, b, x, z, act, a, layout, mm, geometry)


def _conv_of(K, cons):
    """A convolution layer whose kernel is the 4-D parameter K."""
    v, seen = K, 0
    while seen < 8:
        nxt = cons.get(v.index, [])
        if len(nxt) != 1:
            return None
        step, i = nxt[0]
        if step.prim.layer_role == "convolution" and i == 1:
            break
        if not _moves(step):
            return None
        v, seen = step.out, seen + 1
    else:
        return None
    gemm = step
    cols = gemm.inputs[0]
    while not cols.is_leaf and cols.step.prim.layer_role != "windows":
        if not _moves(cols.step):
            return None
        cols = cols.step.inputs[0]
    y = gemm.out
    while y.value.ndim != 4:
        nxt = cons.get(y.index, [])
        if len(nxt) != 1 or not _moves(nxt[0][0]):
            return None
        y = nxt[0][0].out
    if cols.is_leaf:        # an image that needs no gradient: only its windows were kept
        if cols.image is None:
            from .conv import image_from_windows
            found = image_from_windows(cols.value, K.value.shape, y.value.shape[2:])
            if found is None:
                return None
            cols.image = {"value": found[0], "geometry": found[1]}
        return _complete(K, gemm, cols, "conv", cons, cols.image["geometry"], z=y)
    windows = cols.step
    image = windows.inputs[0]
    geometry = {k: windows.params.get(k) for k in ("kernel", "stride", "padding", "dilation")}
    return _complete(K, gemm, image, "conv", cons, geometry, z=y)


def image_of(value):
    """A layer input's value: the image itself where only its windows were recorded."""
    return value.image["value"] if value.image is not None else value.value


# ---- the textbook recursion, evaluated on the engine's numbers ----
def _rows(a, n):
    """`a` as rows of length n (a batch of any leading shape)."""
    return a.reshape(-1, n)


def back_error(layer, delta):
    """What flows back to the layer's input, in the layer's layout (Wᵀ δ per sample)."""
    W = layer.W.value.astype(np.float64)
    if layer.layout == "conv":
        from .conv import image_gradient
        return image_gradient(W, delta, image_of(layer.x).shape, layer.geometry)
    if layer.layout == "xWt":
        return delta @ W
    if layer.layout == "Wx":
        return W.T @ delta
    return delta @ W.T


def weight_grad(layer, delta):
    """∂L/∂W written the textbook way for the layer's layout, in W's own layout."""
    x = image_of(layer.x).astype(np.float64)
    if layer.layout == "conv":
        from .conv import kernel_gradient
        return kernel_gradient(x, delta, layer.geometry)
    if layer.layout == "xWt":
        if delta.ndim == 1:
            return np.outer(delta, x)
        return _rows(delta, delta.shape[-1]).T @ _rows(x, x.shape[-1])
    if layer.layout == "Wx":
        return np.outer(delta, x) if delta.ndim == 1 else delta @ x.T
    if delta.ndim == 1:
        return np.outer(x, delta)
    return _rows(x, x.shape[-1]).T @ _rows(delta, delta.shape[-1])


def bias_grad(layer, delta):
    if layer.layout == "conv":
        return delta.sum(axis=(0, 2, 3))
    if delta.ndim == 1:
        return delta
    if layer.layout == "Wx":
        return delta.sum(axis=1) if layer.b.value.ndim == 1 else delta.sum(axis=1,
                                                                           keepdims=True)
    return _rows(delta, delta.shape[-1]).sum(axis=0)


def formulas(layer, k, xname, batch):
    """(∂L/∂W, ∂L/∂b, back error) of layer k as text and LaTeX, shape-correct as written."""
    dk, dkl = f"δ{k}", rf"\delta_{{{k}}}"
    x, xl = xname, LATEX.name(xname)
    if layer.layout == "conv":
        return ((f"Σ_n,p,q {dk}[n,o,p,q] · {x}[n,c,p+i,q+j]",
                 rf"\sum_{{n,p,q}} {dkl}[n,o,p,q] \cdot {xl}[n,c,p+i,q+j]"),
                (f"Σ_n,p,q {dk}[n,o,p,q]", rf"\sum_{{n,p,q}} {dkl}[n,o,p,q]"))
    if layer.layout == "xWt":
        w = (f"{dk}ᵀ {x}", rf"{dkl}^{{\top}} {xl}") if batch else \
            (f"{dk} · {x}ᵀ", rf"{dkl} \cdot {xl}^{{\top}}")
    elif layer.layout == "Wx":
        w = (f"{dk} {x}ᵀ", rf"{dkl}\, {xl}^{{\top}}") if batch else \
            (f"{dk} · {x}ᵀ", rf"{dkl} \cdot {xl}^{{\top}}")
    else:
        w = (f"{x}ᵀ {dk}", rf"{xl}^{{\top}} {dkl}") if batch else \
            (f"{x} · {dk}ᵀ", rf"{xl} \cdot {dkl}^{{\top}}")
    if not batch:
        b = (dk, dkl)
    elif layer.layout == "Wx":
        b = (f"Σ_columns {dk}", rf"\sum_{{\text{{columns}}}} {dkl}")
    else:
        b = (f"Σ_rows {dk}", rf"\sum_{{\text{{rows}}}} {dkl}")
    return w, b


def back_formula(layer, k, batch):
    """How δ reaches the layer below, in this layer's layout (text, LaTeX)."""
    d, dl = f"δ{k}", rf"\delta_{{{k}}}"
    W, Wl = f"W{k}", f"W_{{{k}}}"
    if layer.layout == "conv":
        return (f"{d} ⋆ᵀ {W}", rf"{dl} \star^{{\top}} {Wl}")   # transposed convolution
    if layer.layout == "Wx" or not batch:
        if layer.layout == "xW":
            return (f"{W} {d}", rf"{Wl}\, {dl}")
        return (f"{W}ᵀ {d}", rf"{Wl}^{{\top}} {dl}")
    if layer.layout == "xWt":
        return (f"{d} {W}", rf"{dl}\, {Wl}")
    return (f"{d} {W}ᵀ", rf"{dl}\, {Wl}^{{\top}}")


def act_derivative(layer):
    return None if layer.act is None else layer.act.local[0]


def act_rule(prim):
    """(text, LaTeX) of an activation's derivative in a layer's names, from the registry's
    symbol and local derivative with x, y written z, a: "σ'(z) = a(1 - a)"."""
    names = {prim.inputs[0]: ("z", fmt.ATOM), "y": ("a", fmt.ATOM)}
    text = fmt.fill(prim.derivs[0], names)
    latex = fmt.fill(fmt.latex_template(prim.derivs[0]), names)
    return (f"{prim.symbol}'(z) = {text}",
            f"{fmt.latex_function(prim.symbol)}'(z) = {latex}")


def agree(recomputed, engine):
    """✓ only for the same shape and the same numbers."""
    if recomputed is None or engine is None:
        return False
    recomputed, engine = np.asarray(recomputed), np.asarray(engine)
    return recomputed.shape == engine.shape and bool(
        np.allclose(recomputed, engine, rtol=1e-4, atol=1e-7))


def _mark(recomputed, engine):
    return " ✓" if agree(recomputed, engine) else " ✗"


def _lmark(mark):
    return r"\ \checkmark" if mark.strip() == "✓" else r"\ \text{✗}"


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


# ---- the model's layer entries ----
def layer_model(rep):
    from .model import data, line
    d = rep.d
    layers = rep.layers
    out = []
    for k in range(len(layers), 0, -1):
        layer = layers[k - 1]
        entry = {"index": k, "layout": layer.layout, "W": layer.W.index,
                 "b": None if layer.b is None else layer.b.index, "x": layer.x.index,
                 "z": layer.z.index, "a": None if layer.a is None else layer.a.index,
                 "activation": None if layer.act is None else layer.act.original.name,
                 "delta": data(layer.z.grad), "checks": [], "lines": []}
        _one_layer(d, layers, k, entry, line)
        out.append(entry)
    return out


def _add(entry, kind, ln, check=None):
    item = {"kind": kind, **ln}
    entry["lines"].append(item)
    if check is not None:
        entry["checks"].append(check)


def _one_layer(d, layers, k, entry, line):
    layer = layers[k - 1]
    show = d.show
    L = d.rec.root.name
    Ll = LATEX.name(L)
    delta = _f64(layer.z.grad)
    parts = [f"W = {layer.W.name} {tuple(layer.W.value.shape)}",
             f"b = {layer.b.name}" if layer.b is not None else "no bias",
             f"activation {layer.act.original.name}" if layer.act is not None else
             "no activation"]
    if layer.layout == "conv":
        g = layer.geometry
        pad = "as read back from its windows" if g.get("read_back") else \
            f"padding {g['padding'][0]}"
        parts.insert(0, f"convolution with a {g['kernel'][0]}×{g['kernel'][1]} kernel, stride "
                        f"{g['stride'][0]}, on the image {layer.x.name or 'x'} "
                        f"{tuple(image_of(layer.x).shape)} ({pad})")
    _add(entry, "para", {"text": f"Layer {k}: {', '.join(parts)}", "latex": None})
    if delta is None:
        _add(entry, "para", {"text": "the gradient does not reach this layer.", "latex": None})
        return
    batch = delta.ndim > 1
    fprime = act_derivative(layer)
    dk, dkl = f"δ{k}", rf"\delta_{{{k}}}"
    qd = d.quantity(dk, "layer", delta)
    zn = layer.z.name
    zl = LATEX.name(zn)
    nxt = layers[k] if k < len(layers) else None
    if nxt is None or not (fprime is not None and nxt.x is layer.out):
        if layer.act is not None and layer.a.grad is not None and fprime is not None:
            an, al = layer.a.name, LATEX.name(layer.a.name)
            da = _f64(layer.a.grad)
            fp_t, fp_l = act_rule(layer.act.original)
            mark = _mark(da * fprime, delta)
            shown = fmt.tag(qd, show(delta))
            _add(entry, "delta", line(
                f"{dk} = ∂{L}/∂{zn} = ∂{L}/∂{an} ⊙ f'({zn}) = {show(da)} ⊙ "
                f"{show(fprime)} = {shown}{mark}    ({fp_t})",
                rf"{dkl} = {LATEX.frac(Ll, zl)} = {LATEX.frac(Ll, al)} \odot "
                rf"f'({zl}) = {latex_value(show(da))} \odot {latex_value(show(fprime))} = "
                rf"{latex_value(shown)}{_lmark(mark)} \quad ({fp_l})"),
                {"what": dk, "formula": "∂L/∂a ⊙ f'(z)", "ok": mark.strip() == "✓"})
        else:
            shown = fmt.tag(qd, show(delta))
            _add(entry, "delta", line(f"{dk} = ∂{L}/∂{zn} = {shown}",
                                      rf"{dkl} = {LATEX.frac(Ll, zl)} = {latex_value(shown)}"))
    else:
        nd = _f64(nxt.z.grad)
        err = back_error(nxt, nd)
        nbatch = nd.ndim > 1 if nxt.layout != "conv" else True
        bt, bl = back_formula(nxt, k + 1, nbatch)
        ok = err.shape == fprime.shape and agree(fprime * err, delta)
        mark = " ✓" if ok else " ✗"
        shown = fmt.tag(qd, show(delta))
        _add(entry, "delta", line(
            f"{dk} = f'({zn}) ⊙ ({bt}) = {show(fprime)} ⊙ {show(err)} = {shown}{mark}",
            rf"{dkl} = f'({zl}) \odot ({bl}) = {latex_value(show(fprime))} \odot "
            rf"{latex_value(show(err))} = {latex_value(shown)}{_lmark(mark)}"),
            {"what": dk, "formula": f"f'(z) ⊙ ({bt})", "ok": ok})
        for ln in _per_neuron(d, layer, nxt, k, fprime, delta):
            _add(entry, "neuron", line(*ln))
    xn = layer.x.name or "x"
    (wt, wl), (bt_, bl_) = formulas(layer, k, xn, batch)
    gw = weight_grad(layer, delta)
    shared = _shares(layers, layer, lambda other: other.W)
    ok = agree(gw if shared is None else shared, layer.W.grad)
    mark = " ✓" if ok else " ✗"
    if shared is not None:      # a weight used by several layers (an RNN's time steps)
        wt, wl = wt + " (this layer's share; the shares add up to ∂L/∂W)", \
            wl + r"\ \text{(this layer's share)}"
    w = layer.W.name
    qw = d.quantity(TEXT.frac(L, w), "chain", d.gvalue(layer.W.grad)) \
        if layer.W.grad is not None else None
    shown = fmt.tag(qw, show(d.gvalue(gw)))
    shape_note = "" if ok or gw.shape == layer.W.value.shape else \
        f" (shape {gw.shape}, but W is {layer.W.value.shape})"
    _add(entry, "weight", line(
        f"∂{L}/∂{w} = {wt} = {shown}{mark}{shape_note}",
        rf"{LATEX.frac(Ll, LATEX.name(w))} = {wl} = {latex_value(shown)}{_lmark(mark)}"),
        {"what": f"∂{L}/∂{w}", "formula": wt, "ok": ok,
         "shape_ok": gw.shape == layer.W.value.shape})
    if layer.b is not None:
        gb = bias_grad(layer, delta)
        gb = gb.reshape(layer.b.value.shape) if gb.size == layer.b.value.size else gb
        shared = _shares(layers, layer, lambda other: other.b)
        ok = agree(gb if shared is None else shared, layer.b.grad)
        mark = " ✓" if ok else " ✗"
        if shared is not None:
            bt_, bl_ = bt_ + " (this layer's share)", bl_ + r"\ \text{(this layer's share)}"
        bn = layer.b.name
        qb = d.quantity(TEXT.frac(L, bn), "chain", d.gvalue(layer.b.grad)) \
            if layer.b.grad is not None else None
        shown = fmt.tag(qb, show(d.gvalue(gb)))
        _add(entry, "bias", line(
            f"∂{L}/∂{bn} = {bt_} = {shown}{mark}",
            rf"{LATEX.frac(Ll, LATEX.name(bn))} = {bl_} = {latex_value(shown)}{_lmark(mark)}"),
            {"what": f"∂{L}/∂{bn}", "formula": bt_, "ok": ok,
             "shape_ok": gb.shape == layer.b.value.shape})
    if layer.layout == "conv" and (layer.x.grad is not None or not layer.x.is_leaf):
        gx_engine = _image_grad_engine(layer)
        if gx_engine is not None:
            gx = back_error(layer, delta)
            ok = agree(gx, gx_engine)
            mark = " ✓" if ok else " ✗"
            _add(entry, "image", line(
                f"∂{L}/∂{xn} = Σ over the windows covering each pixel of δ{k} · W = "
                f"{show(d.gvalue(gx))}{mark}",
                rf"{LATEX.frac(Ll, LATEX.name(xn))} = \sum_{{\text{{windows}}}} {dkl} \cdot W"
                rf" = {latex_value(show(d.gvalue(gx)))}{_lmark(mark)}"),
                {"what": f"∂{L}/∂{xn}", "formula": "transposed convolution", "ok": ok})


def _shares(layers, layer, part):
    """When the parameter `part(layer)` is used by several layers, the sum of their
    textbook gradients (what the engine's gradient must equal); else None."""
    mine = part(layer)
    users = [other for other in layers if part(other) is mine]
    if len(users) < 2:
        return None
    total = None
    for other in users:
        delta = _f64(other.z.grad)
        if delta is None:
            continue
        g = weight_grad(other, delta) if part(other) is other.W else bias_grad(other, delta)
        g = g.reshape(mine.value.shape) if g.size == mine.value.size else g
        total = g if total is None else total + g
    return total


def _image_grad_engine(layer):
    """The gradient the engine delivered at the conv layer's image."""
    x = layer.x
    if x.is_leaf:
        return None if x.grad is None else _f64(x.grad)
    return _f64(x.grad)


def _per_neuron(d, layer, nxt, k, fprime, delta):
    """Seed 000's form, one line per unit: δ_q = f'(z_q) Σ_j δ_j w_jq (single sample, ≤ 4
    units)."""
    if delta.ndim != 1 or delta.size > 4 or nxt.layout != "xWt":
        return []
    W = nxt.W.value.astype(np.float64)
    dn = _f64(nxt.z.grad)
    g = d.gnum if d.grad_decimals is not None else (lambda x: fmt.num(x, 6))
    out = []
    for q in range(delta.size):
        terms = " + ".join(f"{_neg(g(dn[j]))} × {_neg(g(W[j, q]))}" for j in range(dn.size))
        text = (f"  δ{k}[{q}] = f'({layer.z.name}[{q}]) · Σ_j δ{k + 1}[j] w[j,{q}] = "
                f"{g(fprime[q])} × ({terms}) = {g(delta[q])}")
        zl = LATEX.name(layer.z.name)
        lterms = terms.replace("×", r"\times")
        latex = (rf"\delta_{{{k}}}[{q}] = f'({zl}[{q}]) \sum_j \delta_{{{k + 1}}}[j]\, "
                 rf"w[j,{q}] = {g(fprime[q])} \times ({lterms}) = {g(delta[q])}")
        out.append((text, latex))
    return out


def _neg(t):
    return f"({t})" if t.startswith("-") else t


def layer_blocks(m):
    """The layer view's blocks, from the model."""
    from .sections import math
    layers = m["layers"]
    n = len(layers)
    blocks = [("heading", "Layer view (δ = ∂L/∂z per layer)")]
    blocks.append(("para", f"{n} layer{'s' * (n > 1)}; z = Wx + b is a layer's weighted "
                           "input, a = f(z) its activation, δ = ∂L/∂z its error signal. "
                           "✓: the textbook formula, written for this layer's layout and "
                           "evaluated on the engine's numbers, gives the engine's result "
                           "(same shape, same numbers)."))
    for entry in layers:
        for item in entry["lines"]:
            if item["latex"] is None:
                blocks.append(("para", item["text"]))
            else:
                blocks.append(math(item))
    return blocks


# ---- the seeds' weight-share heuristic next to the true gradient ----
def error_split(rep):
    """Blocks comparing, layer by layer from the output down, the seeds' error back-
    propagation with the true gradient. Both heuristics start from the output error
    e = −∂L/∂a (for ½(t − o)², e = t − o) and pass *their own* errors down, as the seeds do:
    the weight-share split of seed 004, e_q = Σ_k w_kq / Σ_p w_kp · e_k, and seed 003's
    simplification E = Wᵀ E. The true error is −∂L/∂a = −Wᵀ δ, with δ = ∂L/∂z from the engine."""
    d, layers = rep.d, rep.layers
    blocks = [("heading", "Error split by weight share vs the true gradient")]
    chain = [layer for layer in layers if layer.layout == "xWt"]
    top = chain[-1] if chain else None
    if top is None or top.a is None or top.a.grad is None or np.ndim(top.a.grad) != 1:
        blocks.append(("para", "(needs a single sample through linear layers with "
                               "activations)"))
        return blocks
    split = plain = -_f64(top.a.grad)
    L, show = d.rec.root.name, d.show
    n = len(layers)
    blocks.append(("para", f"Output error e{n} = −∂{L}/∂{top.a.name} = {show(split)}; both "
                           "heuristics pass their own errors down, as the seeds do."))
    for k in range(n - 1, 0, -1):
        layer, nxt = layers[k - 1], layers[k]
        if nxt.layout != "xWt" or nxt.x is not layer.out or nxt.z.grad is None:
            break
        W = nxt.W.value.astype(np.float64)
        split = (W / W.sum(axis=1, keepdims=True)).T @ split
        plain = W.T @ plain
        true = -back_error(nxt, _f64(nxt.z.grad))
        a = layer.out.name
        blocks.append(("para", f"Layer {k} ({a}) ← layer {k + 1}:"))
        lines = [("weight-share split (seed 004):",
                  f"e{k}[q] = Σ_k w[k,q]/Σ_p w[k,p] · e{k + 1}[k] = {show(split)}",
                  rf"e_{{{k}}}[q] = \sum_k \frac{{w[k,q]}}{{\sum_p w[k,p]}}\, e_{{{k + 1}}}[k]"
                  f" = {latex_value(show(split))}"),
                 ("unnormalised (seed 003):", f"E{k} = W{k + 1}ᵀ E{k + 1} = {show(plain)}",
                  rf"E_{{{k}}} = W_{{{k + 1}}}^{{\top}} E_{{{k + 1}}} = "
                  rf"{latex_value(show(plain))}"),
                 ("true gradient:", f"−∂{L}/∂{a} = W{k + 1}ᵀ (−δ{k + 1}) = {show(true)}",
                  rf"-{LATEX.frac(LATEX.name(L), LATEX.name(a))} = W_{{{k + 1}}}^{{\top}}"
                  rf" (-\delta_{{{k + 1}}}) = {latex_value(show(true))}")]
        for label, text, latex in lines:
            blocks.append(("math", f"{label} {text}", rf"\text{{{label}}}\quad {latex}"))
    blocks.append(("para", "The heuristics share an error in proportion to the weights but "
                           "leave out the factor f'(z) of every layer above (and the split "
                           "also rescales by the weight sums), so they only roughly follow "
                           "the true −∂L/∂a that the chain rule gives."))
    return blocks
