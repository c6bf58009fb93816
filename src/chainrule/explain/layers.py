"""The layer view: deltas per layer for networks of linear layers and activations.

Layers are found in the recorded graph itself, not in module objects, so a hand-written
`sigmoid(x @ W.T + b)` reads the same as `nn.Sequential(nn.Linear(...), nn.Sigmoid())`:
a 2-D parameter W multiplied with an input (x @ Wᵀ as nn.Linear does, W @ x column-vector
style, or x @ W), optionally plus a 1-D parameter b, is a layer's pre-activation z; a
following σ, tanh or ReLU gives its activation a. Which primitive plays which part is the
registry's `layer_role` and `activation`.

Every number shown is the engine's: δ = ∂L/∂z is the gradient the backward pass delivered at
z. The textbook recursions (δ_prev = f'(z) ⊙ (Wᵀ δ), ∂L/∂W = δ · inputᵀ) are evaluated from
those numbers and compared with the engine's results (✓ when they agree), which is how a
learner sees that the formulas *are* backpropagation.
"""
import numpy as np

from . import fmt
from .derive import LATEX


class Layer:
    __slots__ = ("W", "b", "x", "z", "act", "a", "layout", "mm")

    def __init__(self, W, b, x, z, act, a, layout, mm):
        self.W, self.b, self.x, self.z, self.act, self.a = W, b, x, z, act, a
        self.layout, self.mm = layout, mm   # layout: 'xWt' (nn.Linear), 'Wx' or 'xW'

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


def find_layers(rec):
    """The linear layers of the recorded graph, in forward order."""
    cons = _consumers(rec)
    layers = []
    for W in rec.values:
        if not (W.is_param and W.value.ndim == 2):
            continue
        for step, i in cons.get(W.index, []):
            found = _matmul_of(step, i, cons)
            if found is not None:
                layers.append(_complete(W, *found, cons))
    layers.sort(key=lambda layer: layer.z.index)
    return layers


def _matmul_of(step, i, cons):
    role = step.prim.layer_role
    if role == "affine" and i == 1:      # the fused x @ Wᵀ + b
        return step, step.inputs[0], "xWt"
    if role == "transposed" and step.out.value.ndim == 2:
        for s2, j in cons.get(step.out.index, []):
            if s2.prim.layer_role == "product" and j == 1:
                return s2, s2.inputs[0], "xWt"
    if role == "product":
        return (step, step.inputs[1], "Wx") if i == 0 else (step, step.inputs[0], "xW")
    return None


def _complete(W, mm, x, layout, cons):
    z, b = mm.out, None
    if mm.prim.layer_role == "affine" and len(mm.inputs) > 2:
        b = mm.inputs[2]
    after = cons.get(z.index, [])
    if len(after) == 1 and after[0][0].prim.layer_role == "bias":
        add = after[0][0]
        other = add.inputs[1 - after[0][1]]
        if other.is_param and other.value.ndim in (1, 2):
            z, b = add.out, other
    act = a = None
    after = cons.get(z.index, [])
    if len(after) == 1 and after[0][0].prim.activation is not None:
        act = after[0][0]
        a = act.out
    return Layer(W, b, x, z, act, a, layout, mm)


# ---- the textbook recursion, evaluated on the engine's numbers ----
def back_error(layer, delta):
    """Wᵀ δ in the layer's layout: what flows back to the layer's input."""
    W = layer.W.value.astype(np.float64)
    if layer.layout == "xWt":
        return delta @ W
    if layer.layout == "Wx":
        return W.T @ delta
    return delta @ W.T


def weight_grad(layer, delta):
    """∂L/∂W = δ · inputᵀ (summed over the batch), in W's own layout."""
    x = layer.x.value.astype(np.float64)
    if layer.layout == "xWt":
        return np.outer(delta, x) if delta.ndim == 1 else delta.T @ x
    if layer.layout == "Wx":
        return np.outer(delta, x) if delta.ndim == 1 else delta @ x.T
    return np.outer(x, delta) if delta.ndim == 1 else x.T @ delta


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


def _agree(a, b):
    return a is not None and b is not None and np.allclose(a, b, rtol=1e-4, atol=1e-7)


def layer_blocks(rep):
    d = rep.d
    layers = rep.layers
    blocks = [("heading", "Layer view (δ = ∂L/∂z per layer)")]
    n = len(layers)
    blocks.append(("para", f"{n} layer{'s' * (n > 1)}; z = Wx + b is a layer's weighted "
                           "input, a = f(z) its activation, δ = ∂L/∂z its error signal. "
                           "✓: the textbook formula, evaluated on the engine's numbers, "
                           "gives the engine's result."))
    for k in range(n, 0, -1):
        blocks += _one_layer(d, layers, k)
    return blocks


def _line(text, latex):
    return ("math", text, latex)


def _one_layer(d, layers, k):
    layer = layers[k - 1]
    show = d.show
    L = d.rec.root.name
    Ll = LATEX.name(L)
    delta = _f64(layer.z.grad)
    parts = [f"W = {layer.W.name} {tuple(layer.W.value.shape)}",
             f"b = {layer.b.name}" if layer.b is not None else "no bias",
             f"activation {layer.act.prim.name}" if layer.act is not None else "no activation"]
    out = [("para", f"Layer {k}: {', '.join(parts)}")]
    fprime = act_derivative(layer)
    dk, dkl = f"δ{k}", rf"\delta_{{{k}}}"
    zn = layer.z.name
    zl = LATEX.name(zn)
    if k == len(layers) or not (fprime is not None and layers[k].x is layer.out):
        if layer.act is not None and layer.a.grad is not None:
            an, al = layer.a.name, LATEX.name(layer.a.name)
            da = _f64(layer.a.grad)
            fp_t, fp_l = act_rule(layer.act.prim)
            mark = _mark(da * fprime, delta)
            out.append(_line(f"{dk} = ∂{L}/∂{zn} = ∂{L}/∂{an} ⊙ f'({zn}) = {show(da)} ⊙ "
                             f"{show(fprime)} = {show(delta)}{mark}    ({fp_t})",
                             rf"{dkl} = {LATEX.frac(Ll, zl)} = {LATEX.frac(Ll, al)} \odot "
                             rf"f'({zl}) = {_lx(show(da))} \odot {_lx(show(fprime))} = "
                             rf"{_lx(show(delta))}{_lmark(mark)} \quad ({fp_l})"))
        else:
            out.append(_line(f"{dk} = ∂{L}/∂{zn} = {show(delta)}",
                             rf"{dkl} = {LATEX.frac(Ll, zl)} = {_lx(show(delta))}"))
    else:
        nxt = layers[k]
        err = back_error(nxt, _f64(nxt.z.grad))
        mark = _mark(fprime * err, delta)
        out.append(_line(f"{dk} = f'({zn}) ⊙ (W{k + 1}ᵀ δ{k + 1}) = {show(fprime)} ⊙ "
                         f"{show(err)} = {show(delta)}{mark}",
                         rf"{dkl} = f'({zl}) \odot (W_{{{k + 1}}}^{{\top}} "
                         rf"\delta_{{{k + 1}}}) = {_lx(show(fprime))} \odot {_lx(show(err))}"
                         rf" = {_lx(show(delta))}{_lmark(mark)}"))
        out += _per_neuron(d, layer, nxt, k, fprime, delta)
    gw = weight_grad(layer, delta)
    mark = _mark(gw, layer.W.grad)
    xn = layer.x.name or "x"
    w = layer.W.name
    out.append(_line(f"∂{L}/∂{w} = {dk} · {xn}ᵀ = {show(d.gvalue(gw))}{mark}",
                     rf"{LATEX.frac(Ll, LATEX.name(w))} = {dkl} \cdot {LATEX.name(xn)}^{{\top}}"
                     rf" = {_lx(show(d.gvalue(gw)))}{_lmark(mark)}"))
    if layer.b is not None:
        gb = delta if delta.ndim == 1 or layer.layout == "Wx" else delta.sum(axis=0)
        gb = gb.reshape(layer.b.value.shape) if gb.size == layer.b.value.size else gb
        mark = _mark(gb, layer.b.grad)
        bn = layer.b.name
        out.append(_line(f"∂{L}/∂{bn} = {dk} = {show(d.gvalue(gb))}{mark}",
                         rf"{LATEX.frac(Ll, LATEX.name(bn))} = {dkl} = "
                         rf"{_lx(show(d.gvalue(gb)))}{_lmark(mark)}"))
    return out


def _mark(recomputed, engine):
    return " ✓" if _agree(recomputed, engine) else " ✗"


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
        text = (f"δ{k}[{q}] = f'({layer.z.name}[{q}]) · Σ_j δ{k + 1}[j] w[j,{q}] = "
                f"{g(fprime[q])} × ({terms}) = {g(delta[q])}")
        zl = LATEX.name(layer.z.name)
        lterms = terms.replace("×", r"\times")
        latex = (rf"\delta_{{{k}}}[{q}] = f'({zl}[{q}]) \sum_j \delta_{{{k + 1}}}[j]\, "
                 rf"w[j,{q}] = {g(fprime[q])} \times ({lterms}) = {g(delta[q])}")
        out.append(("math", "  " + text, latex))
    return out


def _neg(t):
    return f"({t})" if t.startswith("-") else t


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _lx(text):
    return rf"\text{{{text}}}" if text.startswith("tensor") else text.replace("…", r"\dots")


def _lmark(mark):
    return r"\ \checkmark" if mark.strip() == "✓" else r"\ \text{✗}"


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
                  f" = {_lx(show(split))}"),
                 ("unnormalised (seed 003):", f"E{k} = W{k + 1}ᵀ E{k + 1} = {show(plain)}",
                  rf"E_{{{k}}} = W_{{{k + 1}}}^{{\top}} E_{{{k + 1}}} = {_lx(show(plain))}"),
                 ("true gradient:", f"−∂{L}/∂{a} = W{k + 1}ᵀ (−δ{k + 1}) = {show(true)}",
                  rf"-{LATEX.frac(LATEX.name(L), LATEX.name(a))} = W_{{{k + 1}}}^{{\top}}"
                  rf" (-\delta_{{{k + 1}}}) = {_lx(show(true))}")]
        for label, text, latex in lines:
            blocks.append(("math", f"{label} {text}", rf"\text{{{label}}}\quad {latex}"))
    blocks.append(("para", "The heuristics share an error in proportion to the weights but "
                           "leave out the factor f'(z) of every layer above (and the split "
                           "also rescales by the weight sums), so they only roughly follow "
                           "the true −∂L/∂a that the chain rule gives."))
    return blocks
