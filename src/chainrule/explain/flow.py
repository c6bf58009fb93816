"""Gradient-flow diagnosis: is the gradient reaching every layer?

Per layer (found as in layers.py): the RMS of ∂L/∂W and of δ = ∂L/∂z, the mean local
derivative f'(z) of its activation, the share of saturated entries (σ'(z) or tanh'(z) below
0.01) and of dead ReLU units (never active on this batch); which activations saturate and
which rectify is the registry's `activation`. The verdict compares the first layer's
gradient with the last one's: a gradient that shrinks a thousandfold on the way down is
vanishing, one that grows a thousandfold (or any inf/NaN) is exploding. All numbers are the
engine's, recorded while it ran.

`str(report)` is a compact table plus the verdict, which is what a training loop prints.
"""
import math

import numpy as np

SATURATED = 0.01     # σ'(z) or tanh'(z) below this counts as saturated
RATIO = 1e3          # first/last gradient RMS beyond this factor: vanishing or exploding
EXPLODING_RMS = 1e2  # a weight gradient RMS above this is exploding whatever the ratio


class LayerFlow:
    __slots__ = ("index", "label", "act", "grad_rms", "delta_rms", "mean_fprime",
                 "saturated", "dead", "finite", "weight", "bias", "act_kind")

    def __init__(self, index, label, act, grad_rms, delta_rms, mean_fprime, saturated, dead,
                 finite):
        self.weight = self.bias = None
        self.act_kind = None    # the registry's `activation`: 'saturating', 'rectifier'
        self.index, self.label, self.act = index, label, act
        self.grad_rms, self.delta_rms = grad_rms, delta_rms
        self.mean_fprime, self.saturated, self.dead, self.finite = (mean_fprime, saturated,
                                                                    dead, finite)


class FlowReport:
    """Per-layer gradient sizes and a verdict; `kind` is 'healthy', 'vanishing',
    'exploding' or 'dead'."""

    def __init__(self, layers, params, kind, verdict):
        self.layers, self.params, self.kind, self.verdict = layers, params, kind, verdict

    def __str__(self):
        lines = ["gradient flow"]
        if self.layers:
            lines.append(f"  {'layer':<12}{'act':<9}{'rms ∂L/∂W':>11}{'rms δ':>11}"
                         f"{'mean f′':>10}{'saturated':>11}{'dead':>7}")
            for f in self.layers:
                lines.append(f"  {f.index}: {f.label:<9}{f.act or '-':<9}"
                             f"{_g(f.grad_rms):>11}{_g(f.delta_rms):>11}"
                             f"{_g(f.mean_fprime):>10}{_pct(f.saturated):>11}{_pct(f.dead):>7}")
        covered = {f.weight for f in self.layers} | {f.bias for f in self.layers}
        others = [(n, r) for n, r in self.params if n not in covered]
        if others and self.layers:
            lines.append("  other parameters:")
        for name, rms in others:
            lines.append(f"  {name:<20} rms ∂L/∂p {_g(rms)}")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)

    __repr__ = __str__


def _g(x):
    return "-" if x is None else f"{x:.3g}"


def _pct(x):
    return "-" if x is None else f"{100 * x:.0f}%"


def _rms(a):
    return None if a is None else float(np.sqrt(np.mean(np.square(np.asarray(a, np.float64)))))


def _layer_flow(k, layer):
    from .layers import act_derivative
    act = layer.act.prim.name if layer.act is not None else None
    kind = layer.act.prim.activation if layer.act is not None else None
    fp = act_derivative(layer)
    mean_fp = saturated = dead = None
    if fp is not None:
        mean_fp = float(np.mean(fp))
        if kind == "saturating":
            saturated = float(np.mean(fp < SATURATED))
        if kind == "rectifier":
            z = layer.z.value
            if layer.layout == "conv":      # a unit is a channel: (N, C, H, W) -> (N·H·W, C)
                z = np.moveaxis(z, 1, -1)
            z = z.reshape(-1, z.shape[-1]) if z.ndim else z.reshape(1, 1)
            dead = float(np.mean(np.all(z <= 0, axis=0)))
    g = layer.W.grad
    finite = g is not None and bool(np.all(np.isfinite(g)))
    f = LayerFlow(k, layer.label(), act, _rms(g), _rms(layer.z.grad), mean_fp, saturated,
                  dead, finite)
    f.weight = layer.W.name
    f.act_kind = kind
    f.bias = layer.b.name if layer.b is not None else None
    return f


def diagnose(rep):
    layers = [_layer_flow(k, layer) for k, layer in enumerate(rep.layers, 1)]
    params = [(p.name, _rms(p.grad)) for p in rep.rec.params()]
    kind, verdict = _verdict(layers, params)
    return FlowReport(layers, params, kind, verdict)


def _verdict(layers, params):
    if any(r is not None and not math.isfinite(r) for _, r in params):
        bad = ", ".join(n for n, r in params if r is not None and not math.isfinite(r))
        return "exploding", (f"inf/NaN gradients in {bad} — exploding gradient or a numerical "
                             "overflow; lower the learning rate, clip gradients "
                             "(clip_grad_norm_), and check the loss for log(0) or overflow.")
    if not layers:
        rms = [r for _, r in params if r is not None]
        if rms and max(rms) > EXPLODING_RMS:
            return "exploding", (f"gradient RMS up to {max(rms):.3g} — exploding gradient; "
                                 "lower the learning rate or clip gradients.")
        return "healthy", "no layers found; per-parameter gradient sizes above."
    dead = [f for f in layers if f.dead is not None and f.dead >= 0.5]
    first, last = layers[0], layers[-1]
    ratio = (first.grad_rms / last.grad_rms) if first.grad_rms and last.grad_rms else None
    worst_max = max((f.grad_rms or 0) for f in layers)
    if (ratio is not None and ratio > RATIO) or worst_max > EXPLODING_RMS:
        return "exploding", (f"layer 1's weight gradient is {_fold(ratio)} layer "
                             f"{last.index}'s (largest RMS {worst_max:.3g}) — exploding "
                             "gradient; lower the learning rate, clip gradients "
                             "(clip_grad_norm_), or use a smaller initialisation.")
    if ratio is not None and ratio < 1 / RATIO or (ratio == 0.0):
        return "vanishing", _vanishing(layers, ratio)
    if dead:
        f = dead[0]
        return "dead", (f"layer {f.index}: {_pct(f.dead)} of its ReLU units never fire on "
                        "this batch (dead ReLUs), so no gradient passes them; lower the "
                        "learning rate, use LeakyReLU, or He (kaiming) initialisation.")
    sat = [f for f in layers if f.saturated is not None and f.saturated >= 0.5]
    if sat:
        f = sat[0]
        return "vanishing", (f"layer {f.index}: {_pct(f.saturated)} of its {f.act} units are "
                             f"saturated ({f.act}'(z) < {SATURATED}); gradients through it "
                             "are nearly zero — normalise the inputs, use smaller initial "
                             "weights, or switch to ReLU.")
    span = ""
    if ratio is not None and len(layers) > 1:
        span = f" (layer 1's weight gradient is {_fold(ratio)} layer {last.index}'s)"
    return "healthy", f"gradients reach every layer at similar sizes{span}."


def _fold(ratio):
    if ratio is None or ratio == 0:
        return "none of"
    if 0.5 <= ratio <= 2:
        return "about the size of"
    if 0.1 <= ratio < 0.5:
        return f"{1 / ratio:.1f}× smaller than"
    if 2 < ratio <= 10:
        return f"{ratio:.1f}× the size of"
    if ratio >= 1:
        return f"~10^{math.log10(ratio):.0f}× the size of"
    return f"~10^{math.log10(1 / ratio):.0f}× smaller than"


def _vanishing(layers, ratio):
    hidden = [f for f in layers[:-1] if f.mean_fprime is not None]
    if hidden:
        worst = min(hidden, key=lambda f: f.mean_fprime)
        prod = float(np.prod([f.mean_fprime for f in hidden]))
        shrink = f"~10^{math.log10(1 / prod):.0f}-fold" if prod > 0 else "to nothing"
        fix = ("try ReLU (its derivative is 1 where active) or Xavier/He initialisation"
               if worst.act_kind == "saturating" else
               "try He initialisation, residual connections or batch normalisation")
        return (f"layer {worst.index}: {worst.act}'(z) averages {worst.mean_fprime:.3g}; the "
                f"product of {len(hidden)} such factors shrinks the gradient {shrink}, and "
                f"layer 1's weight gradient is {_fold(ratio)} layer {layers[-1].index}'s — "
                f"vanishing gradient; {fix}.")
    return (f"layer 1's weight gradient is {_fold(ratio)} layer {layers[-1].index}'s — "
            "vanishing gradient; try ReLU, better initialisation or normalisation.")
