"""The update step: each parameter's old value, gradient, the optimizer's state and new value.

`sgd_step` applies p ← p − η·∂L/∂p with the gradients as the derivation wrote them (in
textbook mode the rounded ones, as a hand calculation continues). `optimizer_step` runs a real
optimizer's `.step()` and writes out what it did from the state it kept before and after:
momentum's buffer b = μ·b + (1 − τ)·g (and Nesterov's g + μ·b), Adam's moments
m = β₁·m + (1 − β₁)·g and v = β₂·v + (1 − β₂)·g², their bias corrections m̂ = m/(1 − β₁ᵗ),
v̂ = v/(1 − β₂ᵗ) and the step η·m̂/(√v̂ + ε), weight decay (added to g, or AdamW's
p·(1 − η·λ)), RMSprop's s = α·s + (1 − α)·g². Each written-out update is recomputed from
those numbers and compared with the parameter the optimizer produced (✓). Any other optimizer
is shown as old value, change and new value, with its state.
"""
import numpy as np

from .. import autograd, backend
from . import fmt
from .derive import LATEX, TEXT, latex_value


class Equation:
    """One line: `parts` of text/LaTeX pieces joined by ' = '; numbers tagged."""

    __slots__ = ("text", "latex")

    def __init__(self, text, latex):
        self.text, self.latex = text, latex


class Update:
    """What one optimisation step did."""

    def __init__(self, lr, optimizer, iteration, derivation, params, registered=None):
        self.lr, self.optimizer, self.iteration = lr, optimizer, iteration
        self.d = derivation
        self.params = params          # [ParamUpdate]
        self.registered = registered or {}   # the quantities its lines name

    @property
    def lines(self):
        return [eq for p in self.params for eq in p.equations]

    def __str__(self):
        return "\n".join([self.describe()] + [fmt.plain(eq.text) for eq in self.lines])

    def describe(self):
        if self.optimizer is None:
            return (f"Gradient descent with learning rate η = {fmt.num(self.lr)}: "
                    "new value = old value − η × gradient.")
        name = type(self.optimizer).__name__
        kinds = {p.kind for p in self.params}
        if kinds == {"sgd"}:
            return (f"{name}.step() with learning rate η = {fmt.num(self.lr)}: new value = "
                    "old value − η × gradient.")
        what = {"momentum": "the momentum buffer b, then the step −η·b",
                "adam": "the moments m and v, their bias corrections m̂ and v̂, then the step "
                        "−η·m̂/(√v̂ + ε)",
                "rmsprop": "the running square s, then the step −η·g/(√s + ε)",
                "other": "each parameter's old value, the change the optimizer made and the "
                         "new value"}
        kind = next(iter(kinds)) if len(kinds) == 1 else "other"
        return f"{name}.step(): {what.get(kind, what['other'])}."

    def to_dict(self, d):
        from .model import data, line
        opt = self.optimizer
        for label, info in self.registered.items():
            d.quantities.setdefault(label, info)
        out = {"optimizer": "gradient descent" if opt is None else type(opt).__name__,
               "lr": self.lr, "iteration": self.iteration, "description": self.describe(),
               "hyper": {} if opt is None else _hyper(opt), "params": [], "lines": []}
        for p in self.params:
            out["params"].append({"param": p.value.index, "name": p.value.name,
                                  "kind": p.kind, "old": data(p.old), "grad": data(p.grad),
                                  "new": data(p.new),
                                  "state_before": {k: data(v) for k, v in p.before.items()},
                                  "state": {k: data(v) for k, v in p.after.items()},
                                  "ok": p.ok})
            for eq in p.equations:
                out["lines"].append(line(eq.text, eq.latex))
        return out


def _hyper(opt):
    g = opt.param_groups[0]
    from .model import data
    return {k: (data(list(v)) if isinstance(v, tuple) else data(v) if isinstance(v, float)
                else v) for k, v in g.items()
            if k != "params" and isinstance(v, (int, float, bool, tuple, type(None)))}


class ParamUpdate:
    def __init__(self, value, kind, old, grad, new, before=None, after=None):
        self.value, self.kind = value, kind
        self.old, self.grad, self.new = old, grad, new
        self.before, self.after = before or {}, after or {}
        self.equations = []
        self.ok = None


class _Writer:
    """Builds one parameter's equations: symbols = numbers = result, numbers tagged."""

    def __init__(self, d, name, k):
        self.d, self.name, self.k = d, name, k

    def n(self, x, q=None):
        x = np.asarray(x, np.float64)
        t = self.d.num(x) if x.size == 1 else self.d.show(x)
        return fmt.tag(q, t)

    def g(self, x, q=None):
        x = np.asarray(x, np.float64)
        t = self.d.gnum(x) if x.size == 1 else self.d.show(self.d.gvalue(x))
        return fmt.tag(q, t)

    def paren(self, t):
        return f"({t})" if fmt.plain(t).startswith("-") else t

    def q(self, label, value):
        return self.d.quantity(label, "update", value)

    def eq(self, parts_t, parts_l):
        return Equation(" = ".join(parts_t), " = ".join(latex_value(p) if k == len(parts_l) - 1
                                                        else p for k, p in enumerate(parts_l)))


def sgd_step(d, lr, iteration=0):
    """Apply p ← p − lr·g to every parameter in the record, with g as the derivation wrote it
    (in textbook mode the rounded gradient, exactly as a hand calculation continues)."""
    params = []
    before = set(d.quantities)
    with autograd.no_grad():
        for v in d.rec.params():
            if v.grad is None:
                continue
            t = v.tensor
            old = _f64(t._data)
            g = d.gvalue(v.grad)
            new = backend.beside((old - lr * g).astype(t._data.dtype), t._data)
            np.copyto(t._data, new, casting="same_kind")
            t._version += 1
            pu = ParamUpdate(v, "sgd", old, g, _f64(t._data))
            pu.equations.append(_plain_line(d, pu, lr, iteration))
            pu.ok = True
            params.append(pu)
    return Update(lr, None, iteration, d, params, _new(d, before))


def _new(d, before):
    return {k: v for k, v in d.quantities.items() if k not in before}


def _plain_line(d, pu, lr, k):
    w = _Writer(d, pu.value.name, k)
    n, L = pu.value.name, d.rec.root.name
    qg = TEXT.frac(L, n)
    qnew = w.q(f"{n}({k + 1})", pu.new)
    scalar = np.size(pu.old) == 1
    text = [f"{n}({k + 1})", f"{n}({k}) {fmt.MINUS} η · {TEXT.frac(L, n)}"]
    ln = LATEX.name(n)
    latex = [f"{ln}^{{({k + 1})}}",
             rf"{ln}^{{({k})}} - \eta \cdot {LATEX.frac(LATEX.name(L), ln)}"]
    if scalar:
        g = w.paren(w.g(pu.grad, qg))
        text.append(f"{w.n(pu.old, n)} {fmt.MINUS} {d.num(lr)} × {g}")
        latex.append(rf"{w.n(pu.old, n)} - {d.num(lr)} \times {g}")
    text.append(w.n(pu.new, qnew))
    latex.append(w.n(pu.new, qnew))
    return w.eq(text, latex)


def optimizer_step(d, optimizer, iteration=0):
    """Run `optimizer.step()` and write out, per parameter, the update it made from the state
    it kept."""
    from ..optim import SGD, Adam, RMSprop
    params = d.rec.params()
    before_q = set(d.quantities)
    olds = [_f64(v.tensor._data) for v in params]
    befores = [_state(optimizer, v.tensor) for v in params]
    optimizer.step()
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = []
    for v, old, before in zip(params, olds, befores):
        group = group_of.get(id(v.tensor))
        if v.grad is None or group is None or v.tensor.grad is None:
            continue
        new = _f64(v.tensor._data)
        after = _state(optimizer, v.tensor)
        grad = _f64(v.tensor.grad._data)
        if isinstance(optimizer, SGD):
            pu = _sgd(d, v, old, grad, new, before, after, group, iteration)
        elif isinstance(optimizer, Adam):
            pu = _adam(d, v, old, grad, new, before, after, group, iteration,
                       getattr(optimizer, "_decoupled", False))
        elif isinstance(optimizer, RMSprop) and not group.get("centered") and \
                not group.get("momentum"):
            pu = _rmsprop(d, v, old, grad, new, before, after, group, iteration)
        else:
            pu = _other(d, v, old, grad, new, before, after, iteration)
        out.append(pu)
    lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    return Update(lr, optimizer, iteration, d, out, _new(d, before_q))


def _state(optimizer, p):
    s = optimizer.state.get(id(p), {})
    return {k: (_f64(v) if backend.is_array(v) else v) for k, v in s.items()}


def _f64(a):
    """A float64 host copy of the array `a` (from a device too), for writing it out."""
    return np.array(backend.to_host(a), dtype=np.float64, copy=True)


def _mark(ok):
    return (" ✓", r"\ \checkmark") if ok else (" ✗", r"\ \text{✗}")


def _finish(w, pu, text, latex, recomputed, k):
    ok = bool(np.allclose(recomputed, pu.new, rtol=1e-5, atol=1e-7))
    pu.ok = ok
    mt, ml = _mark(ok)
    n = pu.value.name
    qnew = w.q(f"{n}({k + 1})", pu.new)
    text.append(w.n(pu.new, qnew) + mt)
    latex.append(w.n(pu.new, qnew) + ml)
    pu.equations.append(w.eq(text, latex))


def _decayed_grad(w, pu, group, gname, ln):
    """g = ∂L/∂p (+ λ·p), with its line when weight decay adds to it."""
    d = w.d
    n, L = pu.value.name, d.rec.root.name
    g = pu.grad * (-1.0 if group.get("maximize") else 1.0)
    wd = group.get("weight_decay", 0.0)
    if not wd:
        return g, TEXT.frac(L, n)
    g2 = g + wd * pu.old
    q = w.q(f"g_{n}", g2)
    pu.equations.append(w.eq(
        [f"g_{n}", f"{TEXT.frac(L, n)} + λ·{n}",
         f"{w.g(g, TEXT.frac(L, n))} + {d.num(wd)} × {w.paren(w.n(pu.old, n))}", w.n(g2, q)],
        [f"g_{{{ln}}}", rf"{LATEX.frac(LATEX.name(L), ln)} + \lambda {ln}",
         rf"{w.g(g, TEXT.frac(L, n))} + {d.num(wd)} \times {w.paren(w.n(pu.old, n))}",
         w.n(g2, q)]))
    return g2, q


def _sgd(d, v, old, grad, new, before, after, group, k):
    pu = ParamUpdate(v, "sgd", old, grad, new, before, after)
    w = _Writer(d, v.name, k)
    n, ln = v.name, LATEX.name(v.name)
    lr, mu = group["lr"], group.get("momentum", 0.0)
    g, gq = _decayed_grad(w, pu, group, n, ln)
    if not mu:
        if gq == TEXT.frac(d.rec.root.name, n):
            pu.equations.append(_plain_line(d, ParamUpdate(v, "sgd", old, g, new), lr, k))
            pu.ok = bool(np.allclose(old - lr * g, new, rtol=1e-5, atol=1e-7))
            return pu
        _finish(w, pu, [f"{n}({k + 1})", f"{n}({k}) {fmt.MINUS} η·g_{n}",
                        f"{w.n(old, n)} {fmt.MINUS} {d.num(lr)} × {w.paren(w.n(g, gq))}"],
                [f"{ln}^{{({k + 1})}}", rf"{ln}^{{({k})}} - \eta\, g_{{{ln}}}",
                 rf"{w.n(old, n)} - {d.num(lr)} \times {w.paren(w.n(g, gq))}"],
                old - lr * g, k)
        return pu
    pu.kind = "momentum"
    tau = group.get("dampening", 0.0)
    b_new = after.get("momentum_buffer")
    b_old = before.get("momentum_buffer")
    qb = w.q(f"b_{n}({k + 1})", b_new)
    if b_old is None:
        pu.equations.append(w.eq(
            [f"b_{n}({k + 1})", f"g_{n}" if gq != TEXT.frac(d.rec.root.name, n) else gq,
             w.n(b_new, qb)],
            [f"b_{{{ln}}}^{{({k + 1})}}", f"g_{{{ln}}}", w.n(b_new, qb)]))
        note = "(the first step starts the buffer at the gradient)"
        pu.equations[-1].text += f"    {note}"
        pu.equations[-1].latex += rf" \quad \text{{{note}}}"
        b_calc = g
    else:
        qo = f"b_{n}({k})"
        pu.equations.append(w.eq(
            [f"b_{n}({k + 1})", f"μ·b_{n}({k}) + (1 − τ)·g", f"{d.num(mu)} × "
             f"{w.paren(w.n(b_old, qo))} + {d.num(1 - tau)} × {w.paren(w.n(g, gq))}",
             w.n(b_new, qb)],
            [f"b_{{{ln}}}^{{({k + 1})}}", rf"\mu\, b_{{{ln}}}^{{({k})}} + (1 - \tau)\, g",
             rf"{d.num(mu)} \times {w.paren(w.n(b_old, qo))} + {d.num(1 - tau)} \times "
             rf"{w.paren(w.n(g, gq))}", w.n(b_new, qb)]))
        b_calc = mu * b_old + (1 - tau) * g
    step = b_calc
    sym_t, sym_l = f"b_{n}({k + 1})", rf"b_{{{ln}}}^{{({k + 1})}}"
    val = w.n(b_new, qb)
    if group.get("nesterov"):
        step = g + mu * b_calc
        qn = w.q(f"d_{n}", step)
        pu.equations.append(w.eq(
            [f"d_{n}", f"g + μ·b_{n}({k + 1})",
             f"{w.n(g, gq)} + {d.num(mu)} × {w.paren(w.n(b_new, qb))}", w.n(step, qn)],
            [f"d_{{{ln}}}", rf"g + \mu\, b_{{{ln}}}^{{({k + 1})}}",
             rf"{w.n(g, gq)} + {d.num(mu)} \times {w.paren(w.n(b_new, qb))}", w.n(step, qn)]))
        sym_t, sym_l, val = f"d_{n}", f"d_{{{ln}}}", w.n(step, qn)
    _finish(w, pu, [f"{n}({k + 1})", f"{n}({k}) {fmt.MINUS} η·{sym_t}",
                    f"{w.n(old, n)} {fmt.MINUS} {d.num(lr)} × {w.paren(val)}"],
            [f"{ln}^{{({k + 1})}}", rf"{ln}^{{({k})}} - \eta\, {sym_l}",
             rf"{w.n(old, n)} - {d.num(lr)} \times {w.paren(val)}"],
            old - lr * step, k)
    return pu


def _adam(d, v, old, grad, new, before, after, group, k, decoupled):
    pu = ParamUpdate(v, "adam", old, grad, new, before, after)
    w = _Writer(d, v.name, k)
    n, ln = v.name, LATEX.name(v.name)
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    wd = group.get("weight_decay", 0.0)
    t = int(after.get("step", 1))
    p0 = old
    if decoupled and wd:
        p0 = old * (1 - lr * wd)
        qd = w.q(f"{n}′", p0)
        pu.equations.append(w.eq(
            [f"{n}′", f"{n}({k})·(1 − η·λ)", f"{w.n(old, n)} × (1 − {d.num(lr)} × {d.num(wd)})",
             w.n(p0, qd)],
            [f"{ln}'", rf"{ln}^{{({k})}} (1 - \eta \lambda)",
             rf"{w.n(old, n)} \times (1 - {d.num(lr)} \times {d.num(wd)})", w.n(p0, qd)]))
        g, gq = grad * (-1.0 if group.get("maximize") else 1.0), TEXT.frac(d.rec.root.name, n)
    else:
        g, gq = _decayed_grad(w, pu, group, n, ln)
    m0 = before.get("exp_avg", np.zeros_like(old))
    v0 = before.get("exp_avg_sq", np.zeros_like(old))
    m1, v1 = after["exp_avg"], after["exp_avg_sq"]
    qm0, qv0 = f"m_{n}({t - 1})", f"v_{n}({t - 1})"
    qm, qv = w.q(f"m_{n}({t})", m1), w.q(f"v_{n}({t})", v1)
    G = w.paren(w.n(g, gq))
    pu.equations.append(w.eq(
        [f"m_{n}({t})", f"β₁·m_{n}({t - 1}) + (1 − β₁)·g",
         f"{d.num(b1)} × {w.paren(w.n(m0, qm0))} + {d.num(1 - b1)} × {G}", w.n(m1, qm)],
        [f"m_{{{ln}}}^{{({t})}}", rf"\beta_1 m_{{{ln}}}^{{({t - 1})}} + (1 - \beta_1)\, g",
         rf"{d.num(b1)} \times {w.paren(w.n(m0, qm0))} + {d.num(1 - b1)} \times {G}",
         w.n(m1, qm)]))
    pu.equations.append(w.eq(
        [f"v_{n}({t})", f"β₂·v_{n}({t - 1}) + (1 − β₂)·g²",
         f"{d.num(b2)} × {w.paren(w.n(v0, qv0))} + {d.num(1 - b2)} × {G}²", w.n(v1, qv)],
        [f"v_{{{ln}}}^{{({t})}}", rf"\beta_2 v_{{{ln}}}^{{({t - 1})}} + (1 - \beta_2)\, g^{{2}}",
         rf"{d.num(b2)} \times {w.paren(w.n(v0, qv0))} + {d.num(1 - b2)} \times {G}^{{2}}",
         w.n(v1, qv)]))
    vv, vsym_t, vsym_l, vq = v1, f"v_{n}({t})", rf"v_{{{ln}}}^{{({t})}}", qv
    if group.get("amsgrad"):
        vmax = after["max_exp_avg_sq"]
        vq = w.q(f"vmax_{n}({t})", vmax)
        pu.equations.append(w.eq(
            [f"vmax_{n}({t})", f"max(vmax_{n}({t - 1}), v_{n}({t}))", w.n(vmax, vq)],
            [rf"v^{{\max}}_{{{ln}}}", rf"\max(v^{{\max}}, v_{{{ln}}}^{{({t})}})",
             w.n(vmax, vq)]))
        vv, vsym_t, vsym_l = vmax, f"vmax_{n}({t})", rf"v^{{\max}}_{{{ln}}}"
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    mh, vh = m1 / c1, vv / c2
    qmh, qvh = w.q(f"m̂_{n}", mh), w.q(f"v̂_{n}", vh)
    pu.equations.append(w.eq(
        [f"m̂_{n}", f"m_{n}({t}) / (1 − β₁^{t})",
         f"{w.n(m1, qm)} / (1 − {d.num(b1)}^{t})", w.n(mh, qmh)],
        [rf"\hat m_{{{ln}}}", rf"\frac{{m_{{{ln}}}^{{({t})}}}}{{1 - \beta_1^{{{t}}}}}",
         rf"\frac{{{w.n(m1, qm)}}}{{1 - {d.num(b1)}^{{{t}}}}}", w.n(mh, qmh)]))
    pu.equations.append(w.eq(
        [f"v̂_{n}", f"{vsym_t} / (1 − β₂^{t})", f"{w.n(vv, vq)} / (1 − {d.num(b2)}^{t})",
         w.n(vh, qvh)],
        [rf"\hat v_{{{ln}}}", rf"\frac{{{vsym_l}}}{{1 - \beta_2^{{{t}}}}}",
         rf"\frac{{{w.n(vv, vq)}}}{{1 - {d.num(b2)}^{{{t}}}}}", w.n(vh, qvh)]))
    start, start_l = (f"{n}′", f"{ln}'") if decoupled and wd else (f"{n}({k})",
                                                                  f"{ln}^{{({k})}}")
    step = mh / (np.sqrt(vh) + eps)
    _finish(w, pu, [f"{n}({k + 1})", f"{start} {fmt.MINUS} η·m̂_{n} / (√v̂_{n} + ε)",
                    f"{w.n(p0, start if decoupled and wd else n)} {fmt.MINUS} {d.num(lr)} × "
                    f"{w.paren(w.n(mh, qmh))} / (√{w.n(vh, qvh)} + {d.num(eps)})"],
            [f"{ln}^{{({k + 1})}}",
             rf"{start_l} - \eta \frac{{\hat m_{{{ln}}}}}{{\sqrt{{\hat v_{{{ln}}}}} + \epsilon}}",
             rf"{w.n(p0, start if decoupled and wd else n)} - {d.num(lr)} \times "
             rf"\frac{{{w.n(mh, qmh)}}}{{\sqrt{{{w.n(vh, qvh)}}} + {d.num(eps)}}}"],
            p0 - lr * step, k)
    return pu


def _rmsprop(d, v, old, grad, new, before, after, group, k):
    pu = ParamUpdate(v, "rmsprop", old, grad, new, before, after)
    w = _Writer(d, v.name, k)
    n, ln = v.name, LATEX.name(v.name)
    lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
    g, gq = _decayed_grad(w, pu, group, n, ln)
    t = int(after.get("step", 1))
    s0 = before.get("square_avg", np.zeros_like(old))
    s1 = after["square_avg"]
    qs = w.q(f"s_{n}({t})", s1)
    G = w.paren(w.n(g, gq))
    pu.equations.append(w.eq(
        [f"s_{n}({t})", f"α·s_{n}({t - 1}) + (1 − α)·g²",
         f"{d.num(alpha)} × {w.paren(w.n(s0, f's_{n}({t - 1})'))} + {d.num(1 - alpha)} × {G}²",
         w.n(s1, qs)],
        [f"s_{{{ln}}}^{{({t})}}", rf"\alpha\, s_{{{ln}}}^{{({t - 1})}} + (1 - \alpha)\, g^{{2}}",
         rf"{d.num(alpha)} \times {w.paren(w.n(s0, f's_{n}({t - 1})'))} + {d.num(1 - alpha)}"
         rf" \times {G}^{{2}}", w.n(s1, qs)]))
    _finish(w, pu, [f"{n}({k + 1})", f"{n}({k}) {fmt.MINUS} η·g / (√s_{n}({t}) + ε)",
                    f"{w.n(old, n)} {fmt.MINUS} {d.num(lr)} × {G} / (√{w.n(s1, qs)} + "
                    f"{d.num(eps)})"],
            [f"{ln}^{{({k + 1})}}",
             rf"{ln}^{{({k})}} - \eta \frac{{g}}{{\sqrt{{s_{{{ln}}}^{{({t})}}}} + \epsilon}}",
             rf"{w.n(old, n)} - {d.num(lr)} \times \frac{{{G}}}{{\sqrt{{{w.n(s1, qs)}}} + "
             rf"{d.num(eps)}}}"],
            old - lr * g / (np.sqrt(s1) + eps), k)
    return pu


def _other(d, v, old, grad, new, before, after, k):
    pu = ParamUpdate(v, "other", old, grad, new, before, after)
    w = _Writer(d, v.name, k)
    n, ln = v.name, LATEX.name(v.name)
    qn = w.q(f"{n}({k + 1})", new)
    pu.equations.append(w.eq(
        [f"{n}({k + 1})", f"{n}({k}) {fmt.MINUS} Δ{n}",
         f"{w.n(old, n)} {fmt.MINUS} {w.paren(w.n(old - new))}", w.n(new, qn)],
        [f"{ln}^{{({k + 1})}}", rf"{ln}^{{({k})}} - \Delta {ln}",
         rf"{w.n(old, n)} - {w.paren(w.n(old - new))}", w.n(new, qn)]))
    for key, val in after.items():
        if isinstance(val, np.ndarray):
            pu.equations.append(w.eq([f"state {key} of {n}", w.n(val)],
                                     [rf"\text{{state {_escape(key)} of }} {ln}", w.n(val)]))
    pu.ok = True
    return pu


def _escape(text):
    from .render import text_escape
    return text_escape(text)
