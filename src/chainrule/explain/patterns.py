"""Textbook compounds: several primitives that a textbook writes as one step.

A learner writes `((o - t) ** 2).mean()`; the graph holds a difference, a power, a sum and a
product with 1/N, and a derivation that shows them one by one hides the form every textbook
prints: L = (1/N) Σ (o − t)², ∂L/∂o = 2(o − t)/N. The recognisers here find such groups in the
recorded graph *by the registry's fields* (`algebra`, `loss`, `layer_role`), never by a
primitive's name, and describe each as a `Compound`: a step of the derivation with its own
formula and local derivatives, standing for the real steps inside it (`members`). Everything
numeric still comes from the engine: a compound's local derivative with respect to an input
is the gradient the engine passed to that input from inside the compound, divided by the
gradient that arrived at the compound's output.

A group is only taken when nothing inside it was named by the user and no value inside it is
used outside it, so a compound never hides a value the learner asked about.

Recognised: squared error (mean, sum, ½, any constant, either order, `d * d` or `d ** 2`),
the fused cross-entropies (integer labels, probability targets) with the probabilities and
one-hot labels written out, binary cross-entropy on probabilities, a hand-written softmax
exp(z − max z) / Σ exp(z − max z) (with or without the shift), a hand-written cross-entropy
−c Σ Y ⊙ ln p, and a convolution (windows of the image times the kernel).
"""
import numpy as np

from .. import autograd
from ..ops.registry import ATOM


class VirtualPrim:
    """What the derivation reads from a registry entry, for a compound."""

    variadic = False
    formula_2d = None
    grouping = None
    activation = None
    layer_role = None
    algebra = None
    loss = None
    linear = False
    elementwise = False

    def __init__(self, name, formula, derivs, inputs, *, latex_formula=None,
                 latex_derivs=None, symbol=None, precedence=2, constants=None):
        self.name = name
        self.formula = formula
        self.derivs = tuple(derivs)
        self.inputs = tuple(inputs)
        self.latex_formula = latex_formula
        self.latex_derivs = tuple(latex_derivs) if latex_derivs is not None else None
        self.symbol = symbol or name
        self.precedence = precedence
        self.constants = dict(constants or {})

    def __repr__(self):
        return f"<compound {self.name}>"


class MergedCheck:
    """The finite-difference checks of every edge inside a compound, as one verdict."""

    def __init__(self, checks):
        self.checks = checks
        self.ok = all(c.ok for c in checks)
        bad = [c for c in checks if not c.ok]
        self.detail = "; ".join(c.detail for c in bad) if bad else "all edges inside agree"
        self.rule = checks[0].rule if len(checks) == 1 else None
        self.numeric = checks[0].numeric if len(checks) == 1 else None


class Compound:
    """A step of the derivation standing for several real steps (or one, written in its
    textbook form)."""

    node = None
    elementwise = False

    def __init__(self, kind, prim, inputs, out, members, hidden=(), extras=(), notes=(),
                 roles=None):
        self.kind = kind            # 'squared-error', 'cross-entropy', 'softmax', ...
        self.prim = prim
        self.params = {}
        self.inputs = list(inputs)
        self.out = out
        self.members = list(members)
        self.internal = {s.out.index for s in members if s.out is not out} | set(hidden)
        self.extras = list(extras)  # extra forward lines: dicts name/value/role/formula
        self.notes = list(notes)    # (text, latex) lines after the local derivatives
        self.roles = dict(roles or {})    # value index -> role it gives a leaf ('target', ...)
        self.local = [None] * len(self.inputs)
        self.local_kind = [None] * len(self.inputs)   # 'gradient', 'elementwise', 'jacobian'
        self.local_unrounded = [None] * len(self.inputs)
        self.passed = [None] * len(self.inputs)
        self.upstream = out.grad

    @property
    def original(self):
        return self.prim

    @property
    def check(self):
        out = []
        inside = {s.out.index for s in self.members}
        for u in self.inputs:
            found = [s.check[i] for s in self.members for i, v in enumerate(s.inputs)
                     if s.check[i] is not None and (v is u or v.index in inside)]
            out.append(MergedCheck(found) if found else None)
        return out

    def fill_numbers(self):
        """Local derivatives from the engine's numbers: the gradient passed to each input
        from inside the compound, over the gradient at the compound's output."""
        g = self.out.grad
        for k, u in enumerate(self.inputs):
            passed = None
            for s in self.members:
                for i, v in enumerate(s.inputs):
                    if v is u and s.passed[i] is not None:
                        p = autograd.sum_to(np.asarray(s.passed[i]), u.value.shape)
                        passed = p if passed is None else passed + p
            self.passed[k] = passed
            if self.local[k] is not None or passed is None:
                continue
            if g is not None and np.size(g) == 1 and float(np.reshape(g, ())) != 0:
                self.local[k] = np.asarray(passed, np.float64) / float(np.reshape(g, ()))
                self.local_kind[k] = "gradient"


# ---------------------------------------------------------------- helpers
class Finder:
    """The graph facts the recognisers need: consumers, user names, parameter dependence."""

    def __init__(self, rec, reserved, auto_expanded):
        self.rec = rec
        self.reserved = reserved            # value indices named by the layer view
        self.auto_expanded = auto_expanded  # only the output was named
        self.consumers = {}
        for step in rec.steps:
            for i, v in enumerate(step.inputs):
                self.consumers.setdefault(v.index, []).append((step, i))
        self.depends = {}
        for v in rec.values:
            self.depends[v.index] = v.is_param if v.is_leaf else any(
                self.depends[u.index] for u in v.step.inputs)
        self.claimed = set()

    def inner(self, v, *steps):
        """Whether `v` can disappear inside a compound: computed, unnamed, not claimed, and
        consumed only by `steps`."""
        if v.is_leaf or v.user_named or v.index in self.reserved or v.index in self.claimed:
            return False
        return all(s in steps for s, _ in self.consumers.get(v.index, []))

    def constant(self, v):
        """The number of an unnamed scalar constant (the 2 of x ** 2, the 1/N of a mean)."""
        if v.is_leaf and not v.is_param and v.scalar and not v.user_named and \
                v.value.dtype.kind in "fiu":
            return float(v.value.reshape(()))
        return None

    def data(self, v):
        """A value that does not depend on any parameter, given as data (a target)."""
        return v.is_leaf and not v.is_param


def _scales(f, top):
    """Walk down from `top` through products/quotients with constants, negations and sums:
    (the value below, the constant factor, the number of sums, the steps walked)."""
    c, sums, steps, v = 1.0, 0, [], top
    while not v.is_leaf:
        s = v.step
        if v is not top and not f.inner(v, *_consumer_steps(f, v)):
            break
        a = s.prim.algebra
        nxt = None
        if a == "product" and len(s.inputs) == 2:
            for j in (0, 1):
                k = f.constant(s.inputs[j])
                if k is not None and s.inputs[1 - j] is not s.inputs[j]:
                    c, nxt = c * k, s.inputs[1 - j]
                    break
        elif a == "quotient" and f.constant(s.inputs[1]) not in (None, 0.0):
            c, nxt = c / f.constant(s.inputs[1]), s.inputs[0]
        elif a == "negation":
            c, nxt = -c, s.inputs[0]
        elif a == "total":
            sums, nxt = sums + 1, s.inputs[0]
        if nxt is None:
            break
        steps.append(s)
        v = nxt
    return v, c, sums, steps


def _given(v):
    """Data the user passed in (named, or a tensor rather than a number): a target."""
    return v.is_leaf and not v.is_param and (v.user_named or not v.scalar)


def _consumer_steps(f, v):
    return [s for s, _ in f.consumers.get(v.index, [])]


def _fraction(c):
    """n when c = 1/n for a whole n (up to rounding), else None."""
    if c == 0:
        return None
    n = 1.0 / c
    r = round(n)
    return int(r) if r >= 1 and abs(n - r) <= 1e-6 * max(1.0, abs(n)) else None


def _num(x):
    from .fmt import num
    return num(x, 10)


# ---------------------------------------------------------------- squared error
def squared_error(f, top):
    """c Σ (o − t)² (or its mean, its half): o depends on a parameter, t is data."""
    if not top.scalar or top.is_leaf:
        return None
    v, c, sums, steps = _scales(f, top)
    if v.is_leaf:
        return None
    sq = v.step
    if v is not top and not f.inner(v, *_consumer_steps(f, v)):
        return None
    a = sq.prim.algebra
    if a == "power" and f.constant(sq.inputs[1]) == 2.0:
        d = sq.inputs[0]
    elif a == "product" and len(sq.inputs) == 2 and sq.inputs[0] is sq.inputs[1]:
        d = sq.inputs[0]
    else:
        return None
    if d.is_leaf or not f.inner(d, sq) or d.step.prim.algebra != "difference":
        return None
    diff = d.step
    a_, b_ = diff.inputs
    if f.depends[a_.index] and not f.depends[b_.index] and (f.data(b_) or f.constant(b_) is not None):
        o, t, order = a_, b_, "o-t"
    elif f.depends[b_.index] and not f.depends[a_.index] and (f.data(a_) or f.constant(a_) is not None):
        o, t, order = b_, a_, "t-o"
    else:
        return None
    n = d.value.size
    if sums == 0 and (n != 1 or not f.auto_expanded):
        return None             # a scalar ½(y − o)² keeps its primitive form when folded
    members = steps + [sq, diff]
    form = _se_form(c, n, sums > 0, order)
    if form is None:
        return None
    text, latex, dtext, dlatex, constants, note = form
    prim = VirtualPrim("squared error", text, [dtext, _negated(dtext)], ("o", "t"),
                       latex_formula=latex, latex_derivs=[dlatex, _negated(dlatex)],
                       symbol="SE", constants=constants)
    roles = {t.index: "target"} if _given(t) else {}
    notes = [note] if note else []
    return Compound("squared-error", prim, [o, t], top, members, roles=roles,
                    notes=notes)


def _negated(formula):
    return formula[1:] if formula.startswith("-") else f"-({formula})" if " " in formula \
        else f"-{formula}"


def _se_form(c, n, summed, order):
    """(formula, LaTeX, ∂/∂o, its LaTeX, constants, note) for c Σ (o − t)²."""
    sq, lsq = ("(o - t)²", "(o - t)^{2}") if order == "o-t" else ("(t - o)²", "(t - o)^{2}")
    diff = "o - t" if order == "o-t" else "t - o"
    sign = "" if order == "o-t" else "-"
    sigma, lsigma = ("Σ ", r"\sum ") if summed else ("", "")
    mean = _fraction(c * n) if n > 1 and c not in (0.5, 1.0) else None
    if n > 1 and mean == 1:
        return (f"(1/N) {sigma}{sq}", rf"\frac{{1}}{{N}} {lsigma}{lsq}",
                f"{sign}2({diff})/N", rf"{sign}\frac{{2({diff})}}{{N}}", {"N": n},
                f"N = {n}: the mean over the {n} entries")
    if n > 1 and mean == 2:
        return (f"(1/2N) {sigma}{sq}", rf"\frac{{1}}{{2N}} {lsigma}{lsq}",
                f"{sign}({diff})/N", rf"{sign}\frac{{{diff}}}{{N}}", {"N": n},
                f"N = {n}: half the mean over the {n} entries")
    if c == 1.0:
        return (f"{sigma}{sq}", f"{lsigma}{lsq}", f"{sign}2({diff})", f"{sign}2({diff})", {},
                None)
    if c == 0.5:
        d = diff if not sign else f"-({diff})"
        return (f"½ {sigma}{sq}", rf"\tfrac12 {lsigma}{lsq}", d, d, {}, None)
    k = _num(c)
    return (f"{k} · {sigma}{sq}", rf"{k} \cdot {lsigma}{lsq}", f"{sign}2 · {k} · ({diff})",
            rf"{sign}2 \cdot {k} \cdot ({diff})", {}, None)


# ---------------------------------------------------------------- cross-entropies
def free_name(taken, *candidates):
    """The first candidate not in `taken` (else the first with the smallest free number
    appended), added to `taken`."""
    for n in candidates:
        if n not in taken:
            taken.add(n)
            return n
    k = 2
    while f"{candidates[0]}{k}" in taken:
        k += 1
    taken.add(f"{candidates[0]}{k}")
    return f"{candidates[0]}{k}"


def _softmax_rows(z, axis):
    z = np.asarray(z, np.float64)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def fused_cross_entropy(f, step, taken):
    """A fused cross-entropy primitive, with its probabilities and one-hot labels."""
    kind = step.prim.loss
    reduction = step.params.get("reduction", "mean")
    if reduction == "none" or not step.out.scalar:   # else 'mean' or a plain sum
        return None
    z = step.inputs[0]
    axis = step.params.get("axis", 1) if kind == "soft-cross-entropy" else 1
    if kind == "cross-entropy" and np.ndim(z.value) != 2:
        return None
    p = _softmax_rows(z.value, axis)
    pname = free_name(taken, "p", "P", "prob")
    extras = []
    if kind == "cross-entropy":
        labels = np.asarray(step.params["labels"])
        onehot = np.zeros(p.shape)
        onehot[np.arange(p.shape[0]), labels] = 1.0
        yname = free_name(taken, "Y", "T", "onehot")
        lname = free_name(taken, "labels", "y", "classes")
        extras = [dict(name=lname, value=labels, role="labels", formula=None),
                  dict(name=yname, value=onehot, role="value",
                       formula=(f"onehot({lname})", rf"\mathrm{{onehot}}({_latex(lname)})"))]
        target = None
        m = p.shape[0]
        inputs, keys = [z], ("z",)
    else:
        target = step.inputs[1]
        onehot = np.asarray(target.value, np.float64)
        yname = None
        m = int(np.prod([n for i, n in enumerate(p.shape) if i != axis])) or 1
        inputs, keys = [z, target], ("z", "t")
    extras.append(dict(name=pname, value=p, role="value",
                       formula=("softmax(z)", r"\mathrm{softmax}(z)"), operand=z))
    yref = yname if kind == "cross-entropy" else "t"
    scale, lscale = ("-(1/N) ", r"-\frac{1}{N} ") if reduction == "mean" else ("-", "-")
    formula = f"{scale}Σ {yref} ⊙ ln softmax(z)"
    latex = rf"{lscale}\sum {_latex(yref) if yref != 't' else 't'} \odot \ln \mathrm{{softmax}}(z)"
    rows_one = np.allclose(onehot.sum(axis=axis), 1.0)
    ylabel = yname if kind == "cross-entropy" else "t"
    dz = f"({pname} - {ylabel})" if rows_one else f"({pname}·Σ{ylabel} - {ylabel})"
    ldz = (rf"({_latex(pname)} - {_latex(ylabel) if ylabel != 't' else 't'})" if rows_one else
           rf"({_latex(pname)} \sum {ylabel} - {ylabel})")
    if reduction == "mean":
        dz, ldz = f"{dz}/N", rf"\frac{{{ldz[1:-1]}}}{{N}}" if rows_one else rf"{ldz}/N"
    constants = {"N": m, pname: p}
    if kind == "cross-entropy":
        constants[yname] = onehot
    derivs, lderivs = [dz], [ldz]
    if kind == "soft-cross-entropy":
        derivs.append(f"-ln {pname}" + ("/N" if reduction == "mean" else ""))
        lderivs.append(rf"-\ln {_latex(pname)}" + ("/N" if reduction == "mean" else ""))
    prim = VirtualPrim("cross-entropy", formula, derivs, keys, latex_formula=latex,
                       latex_derivs=lderivs, symbol="CE", constants=constants)
    roles = {}
    if target is not None and _given(target):
        roles[target.index] = "target"
    note = (f"softmax and cross-entropy together: ∂L/∂z = ({pname} − {ylabel})"
            + ("/N" if reduction == "mean" else "") + ", the probabilities minus the "
            "one-hot labels" if rows_one else None)
    notes = [f"N = {m}: the mean over the {m} rows"] if reduction == "mean" else []
    comp = Compound(kind, prim, inputs, step.out, [step], extras=extras, roles=roles,
                    notes=notes)
    comp.textbook_note = note
    return comp


def _latex(name):
    from .fmt import latex_name
    return latex_name(name)


def binary_cross_entropy(f, top):
    """−(1/N) Σ [t ln p + (1 − t) ln(1 − p)] over a fused elementwise BCE."""
    if not top.scalar or top.is_leaf:
        return None
    v, c, sums, steps = _scales(f, top)
    if v.is_leaf or v.step.prim.loss != "binary-cross-entropy":
        return None
    if v is not top and not f.inner(v, *_consumer_steps(f, v)):
        return None
    bce = v.step
    p, t = bce.inputs
    n = v.value.size
    mean = _fraction(c * n)
    if sums == 0 and n > 1:
        return None
    if mean == 1 and n > 1:
        formula = "-(1/N) Σ [t·ln p + (1 - t)·ln(1 - p)]"
        latex = r"-\frac{1}{N} \sum \left[t \ln p + (1 - t) \ln(1 - p)\right]"
        deriv, lderiv = "(p - t) / (p(1 - p)·N)", r"\frac{p - t}{p(1 - p) N}"
        constants = {"N": n}
    elif c == 1.0:
        formula = "-Σ [t·ln p + (1 - t)·ln(1 - p)]" if n > 1 else "-[t·ln p + (1 - t)·ln(1 - p)]"
        latex = (r"-\sum " if n > 1 else "-") + r"\left[t \ln p + (1 - t) \ln(1 - p)\right]"
        deriv, lderiv = "(p - t) / (p(1 - p))", r"\frac{p - t}{p(1 - p)}"
        constants = {}
    else:
        return None
    prim = VirtualPrim("binary cross-entropy", formula, [deriv, "ln(1 - p) - ln p"], ("p", "t"),
                       latex_formula=latex, latex_derivs=[lderiv, r"\ln(1 - p) - \ln p"],
                       symbol="BCE", constants=constants)
    roles = {t.index: "target"} if _given(t) else {}
    notes = [f"N = {n}: the mean over the {n} entries"] if constants else []
    comp = Compound("binary-cross-entropy", prim, [p, t], top, steps + [bce], roles=roles,
                    notes=notes)
    comp.textbook_note = None
    if not p.is_leaf and p.step.prim.symbol == "σ":
        comp.textbook_note = ("σ and binary cross-entropy together: ∂L/∂z = (p − t)"
                              + ("/N" if constants else "") + " for p = σ(z)")
    return comp


def softmax(f, div):
    """exp(s) / Σ exp(s) with s = z − max z (a constant or a max node) or s = z."""
    if div.prim.algebra != "quotient":
        return None
    e, total = div.inputs
    if e.is_leaf or total.is_leaf or e.step.prim.algebra != "exponential":
        return None
    ts = total.step
    if ts.prim.algebra != "total" or ts.inputs[0] is not e or not ts.params.get("keepdims"):
        return None
    axes = tuple(ts.params.get("axes") or ())
    if len(axes) != 1 or not f.inner(total, div) or not f.inner(e, ts, div):
        return None
    exp = e.step
    s = exp.inputs[0]
    members, hidden = [div, ts, exp], set()
    z = s
    if not s.is_leaf and s.step.prim.algebra == "difference" and f.inner(s, exp):
        a, m = s.step.inputs
        if m.is_leaf and not m.is_param and not m.user_named:
            z, hidden = a, {m.index}
            members.append(s.step)
        elif not m.is_leaf and m.step.prim.algebra == "largest" and m.step.inputs[0] is a \
                and f.inner(m, s.step):
            z = a
            members += [s.step, m.step]
    prim = VirtualPrim("softmax", "softmax(z)", ["yᵢ(δᵢⱼ - yⱼ)"], ("z",),
                       latex_formula=r"\mathrm{softmax}(z)",
                       latex_derivs=[r"{y}_{i}(\delta_{ij} - {y}_{j})"], symbol="softmax",
                       precedence=ATOM)
    comp = Compound("softmax", prim, [z], div.out, members, hidden=hidden)
    comp.axis = axes[0]
    p = np.asarray(div.out.value, np.float64)
    row = np.moveaxis(p, axes[0], -1).reshape(-1, p.shape[axes[0]])[0]
    comp.local[0] = np.diag(row) - np.outer(row, row)
    comp.local_kind[0] = "jacobian"
    comp.rows = int(p.size // p.shape[axes[0]])
    comp.textbook_note = None
    return comp


def manual_cross_entropy(f, top, softmaxes):
    """c Σ Y ⊙ ln p written by hand (c < 0, usually −1/m)."""
    if not top.scalar or top.is_leaf:
        return None
    v, c, sums, steps = _scales(f, top)
    if sums == 0 or v.is_leaf or v.step.prim.algebra != "product" or c >= 0:
        return None
    if v is not top and not f.inner(v, *_consumer_steps(f, v)):
        return None
    prod = v.step
    y = logp = None
    for j in (0, 1):
        a, b = prod.inputs[j], prod.inputs[1 - j]
        if f.data(a) and not a.scalar and not b.is_leaf and \
                b.step.prim.algebra == "logarithm" and f.inner(b, prod):
            y, logp = a, b
    if y is None:
        return None
    p = logp.step.inputs[0]
    m = _fraction(-c)
    if m is None:
        return None
    if m == 1:
        formula, latex = "-Σ t ⊙ ln p", r"-\sum t \odot \ln p"
        deriv, lderiv, constants = "-t / p", r"-\frac{t}{p}", {}
    else:
        formula, latex = "-(1/M) Σ t ⊙ ln p", r"-\frac{1}{M} \sum t \odot \ln p"
        deriv, lderiv, constants = "-t / (M·p)", r"-\frac{t}{M p}", {"M": m}
    prim = VirtualPrim("cross-entropy", formula, [deriv, "-ln p" + ("/M" if m > 1 else "")],
                       ("p", "t"), latex_formula=latex,
                       latex_derivs=[lderiv, r"-\ln p" + ("/M" if m > 1 else "")],
                       symbol="CE", constants=constants)
    roles = {y.index: "target"} if _given(y) else {}
    notes = [f"M = {m}"] if m > 1 else []
    comp = Compound("cross-entropy", prim, [p, y], top, steps + [prod, logp.step], roles=roles,
                    notes=notes)
    comp.textbook_note = None
    comp.softmax = softmaxes.get(p.index)
    comp.m = m
    return comp


def _alg(v, algebra):
    """The step making `v` when its registry algebra is `algebra` (else None)."""
    return None if v.is_leaf or v.step.prim.algebra != algebra else v.step


def _shift(f, v):
    """An unnamed constant computed from data (a stabilising shift such as max(x, 0))."""
    return v.is_leaf and not v.is_param and not v.user_named


def softplus(f, top):
    """F.softplus: where(x > 20, x, ln(exp(−m) + exp(z − m)) + m), z = where(x > 20, 0, x),
    m = max(z, 0) a constant: softplus(x) = ln(1 + eˣ), derivative σ(x)."""
    sel = _alg(top, "selection")
    if sel is None:
        return None
    x, e = sel.inputs
    add = _alg(e, "addition")
    if add is None or not f.inner(e, sel):
        return None
    lg, m = add.inputs
    lstep = _alg(lg, "logarithm")
    if lstep is None or not _shift(f, m) or not f.inner(lg, add):
        return None
    q = lstep.inputs[0]
    qstep = _alg(q, "addition")
    if qstep is None or not f.inner(q, lstep):
        return None
    c, ex = qstep.inputs
    estep = _alg(ex, "exponential")
    if estep is None or not _shift(f, c) or not f.inner(ex, qstep):
        return None
    d = estep.inputs[0]
    dstep = _alg(d, "difference")
    if dstep is None or dstep.inputs[1] is not m or not f.inner(d, estep):
        return None
    z = dstep.inputs[0]
    zstep = _alg(z, "selection")
    if zstep is None or zstep.inputs[1] is not x or not f.inner(z, dstep):
        return None
    prim = VirtualPrim("softplus", "softplus(x)", ["σ(x)"], ("x",),
                       latex_formula=r"\mathrm{softplus}(x)", latex_derivs=[r"\sigma(x)"],
                       symbol="softplus", precedence=ATOM)
    comp = Compound("softplus", prim, [x], top, [sel, add, lstep, qstep, estep, dstep, zstep],
                    hidden={m.index, c.index},
                    notes=["softplus(x) = ln(1 + eˣ), computed without overflow"])
    comp.local[0] = 1 / (1 + np.exp(-np.asarray(x.value, np.float64)))
    comp.local_kind[0] = "elementwise"
    comp.textbook_note = None
    return comp


def logits_binary_cross_entropy(f, top, taken):
    """F.binary_cross_entropy_with_logits: c Σ [(1 − t)·z + softplus(−z)], the loss of σ(z)."""
    if not top.scalar or top.is_leaf:
        return None
    v, c, sums, steps = _scales(f, top)
    add = _alg(v, "addition")
    if add is None or sums == 0 or (v is not top and not f.inner(v, add, *_consumer_steps(f, v))):
        return None
    prod, sp = add.inputs
    if _alg(prod, "addition") is None and _alg(sp, "product") is not None:
        prod, sp = sp, prod
    pstep = _alg(prod, "product")
    if pstep is None or not f.inner(prod, add):
        return None
    a, z = pstep.inputs
    if not _shift(f, a):
        a, z = z, a
    if not _shift(f, a) or a.scalar:
        return None
    comp_sp = softplus(f, sp) if f.inner(sp, add) else None
    if comp_sp is None:
        return None
    neg = _alg(comp_sp.inputs[0], "negation")
    if neg is None or neg.inputs[0] is not z or not f.inner(comp_sp.inputs[0], comp_sp.members[0],
                                                            comp_sp.members[-1]):
        return None
    n = v.value.size
    if _fraction(c * n) != 1 and c != 1.0:
        return None
    mean = c != 1.0 or n == 1
    tname = free_name(taken, "t", "target")
    target = 1.0 - np.asarray(a.value, np.float64)
    scale, lscale = ("-(1/N) ", r"-\frac{1}{N} ") if mean and n > 1 else ("-", "-")
    formula = f"{scale}Σ [{tname}·ln σ(z) + (1 - {tname})·ln(1 - σ(z))]"
    latex = (rf"{lscale}\sum \left[{_latex(tname)} \ln \sigma(z) + (1 - {_latex(tname)}) "
             rf"\ln(1 - \sigma(z))\right]")
    deriv = f"(σ(z) - {tname})" + ("/N" if mean and n > 1 else "")
    lderiv = (rf"\frac{{\sigma(z) - {_latex(tname)}}}{{N}}" if mean and n > 1 else
              rf"\sigma(z) - {_latex(tname)}")
    constants = {"N": n, tname: target}
    prim = VirtualPrim("binary cross-entropy", formula, [deriv], ("z",), latex_formula=latex,
                       latex_derivs=[lderiv], symbol="BCE", constants=constants)
    extras = [dict(name=tname, value=target, role="target", formula=None)]
    notes = [f"N = {n}: the mean over the {n} entries; on logits z, i.e. of p = σ(z)"] \
        if mean and n > 1 else ["on logits z, i.e. of p = σ(z)"]
    members = steps + [add, pstep, neg] + comp_sp.members
    comp = Compound("logits-binary-cross-entropy", prim, [z], top, members,
                    hidden={a.index} | comp_sp.internal, extras=extras, notes=notes)
    comp.textbook_note = None
    return comp


def log_softmax(f, top):
    """log_softmax(x) written as (x − m) − ln Σ exp(x − m), or as x − (ln Σ exp(x − m) + m),
    with m a constant shift (derivative δᵢⱼ − softmax(x)ⱼ); or logsumexp(x) = ln Σ exp(x − m)
    + m alone (derivative softmax(x))."""
    sub = _alg(top, "difference")
    found = None
    if sub is not None:
        s, lg = sub.inputs
        lstep, sstep = _alg(lg, "logarithm"), _alg(s, "difference")
        if lstep is not None and sstep is not None and _shift(f, sstep.inputs[1]) and \
                f.inner(lg, sub):
            tot = _alg(lstep.inputs[0], "total")
            ex = None if tot is None else _alg(tot.inputs[0], "exponential")
            if ex is not None and ex.inputs[0] is s and f.inner(s, ex, sub) and \
                    f.inner(lstep.inputs[0], lstep) and f.inner(tot.inputs[0], tot):
                found = ("logsoftmax", sstep.inputs[0], sstep.inputs[1], tot,
                         [sub, lstep, tot, ex, sstep])
    if found is None:
        lse, outer = (sub.inputs[1], sub) if sub is not None else (top, None)
        add = _alg(lse, "addition")
        if add is None:
            return None
        lg, m = add.inputs
        lstep = _alg(lg, "logarithm")
        if lstep is None or not _shift(f, m) or not f.inner(lg, add):
            return None
        tot = _alg(lstep.inputs[0], "total")
        ex = None if tot is None else _alg(tot.inputs[0], "exponential")
        d = None if ex is None else _alg(ex.inputs[0], "difference")
        if d is None or d.inputs[1] is not m or not f.inner(ex.inputs[0], ex) or \
                not f.inner(tot.inputs[0], tot) or not f.inner(lstep.inputs[0], lstep):
            return None
        x = d.inputs[0]
        members = [add, lstep, tot, ex, d]
        if outer is not None and outer.inputs[0] is x and f.inner(lse, outer):
            found = ("logsoftmax", x, m, tot, members + [outer])
        elif outer is None:
            found = ("lse", x, m, tot, members)
        else:
            return None
    kind, x, m, tot, members = found
    axes = tuple(tot.params.get("axes") or ())
    if len(axes) != 1 or not tot.params.get("keepdims"):
        return None
    xv = np.asarray(x.value, np.float64)
    e = np.exp(xv - xv.max(axis=axes[0], keepdims=True))
    p = e / e.sum(axis=axes[0], keepdims=True)
    row = np.moveaxis(p, axes[0], -1).reshape(-1, p.shape[axes[0]])[0]
    if kind == "logsoftmax":
        prim = VirtualPrim("log_softmax", "log_softmax(x)", ["δᵢⱼ - softmax(x)ⱼ"], ("x",),
                           latex_formula=r"\log\mathrm{softmax}(x)",
                           latex_derivs=[r"\delta_{ij} - \mathrm{softmax}(x)_{j}"],
                           symbol="log_softmax", precedence=ATOM)
        comp = Compound("log-softmax", prim, [x], top, members, hidden={m.index})
        comp.local[0] = np.eye(row.size) - row[None, :]
    else:
        prim = VirtualPrim("logsumexp", "logsumexp(x)", ["softmax(x)"], ("x",),
                           latex_formula=r"\mathrm{logsumexp}(x)",
                           latex_derivs=[r"\mathrm{softmax}(x)"], symbol="logsumexp",
                           precedence=ATOM)
        comp = Compound("logsumexp", prim, [x], top, members, hidden={m.index})
        comp.local[0] = row[None, :]
    comp.local_kind[0] = "jacobian"
    comp.rows = int(p.size // p.shape[axes[0]])
    comp.axis = axes[0]
    comp.probs = p
    comp.textbook_note = None
    return comp


def negative_log_likelihood(f, top, taken, logsoftmaxes):
    """F.nll_loss: c Σₙ wₙ·(−logp[n, yₙ]) (c = 1/Σw for the mean), the labels y in the
    picking index."""
    if not top.scalar or top.is_leaf:
        return None
    v, c, sums, steps = _scales(f, top)
    if sums == 0 or v.is_leaf:
        return None
    if v is not top and not f.inner(v, *_consumer_steps(f, v)):
        return None
    prod = _alg(v, "product")
    weights = None
    if prod is not None:
        a, b = prod.inputs
        if _shift(f, b) and not b.scalar:
            weights, v = b, a
        elif _shift(f, a) and not a.scalar:
            weights, v = a, b
        else:
            return None
        if not f.inner(v, prod):
            return None
    neg = _alg(v, "negation")
    if neg is None:
        return None
    pick = _alg(neg.inputs[0], "indexing")
    if pick is None or not f.inner(neg.inputs[0], neg):
        return None
    index = pick.params.get("index")
    logp = pick.inputs[0]
    if not (isinstance(index, tuple) and len(index) == 2 and np.ndim(logp.value) == 2):
        return None
    rows, labels = (np.asarray(i) for i in index)
    if not np.array_equal(rows, np.arange(logp.value.shape[0])):
        return None
    n = logp.value.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights.value, np.float64)
    if not np.allclose(w, 1.0):
        return None          # class weights: the primitive chain says it best
    mean = _fraction(c * n) == 1 and n > 1
    if not mean and c != 1.0:
        return None
    onehot = np.zeros(logp.value.shape)
    onehot[np.arange(n), labels] = 1.0
    yname = free_name(taken, "Y", "onehot")
    lname = free_name(taken, "labels", "classes")
    scale, lscale = ("-(1/N) ", r"-\frac{1}{N} ") if mean else ("-", "-")
    formula = f"{scale}Σ {yname} ⊙ x"
    latex = rf"{lscale}\sum {_latex(yname)} \odot x"
    deriv, lderiv = (f"-{yname}/N", rf"-\frac{{{_latex(yname)}}}{{N}}") if mean else \
        (f"-{yname}", f"-{_latex(yname)}")
    prim = VirtualPrim("negative log-likelihood", formula, [deriv], ("x",), latex_formula=latex,
                       latex_derivs=[lderiv], symbol="NLL",
                       constants={"N": n, yname: onehot})
    extras = [dict(name=lname, value=labels, role="labels", formula=None),
              dict(name=yname, value=onehot, role="value",
                   formula=(f"onehot({lname})", rf"\mathrm{{onehot}}({_latex(lname)})"))]
    notes = [f"N = {n}: the mean over the {n} rows"] if mean else []
    hidden = {weights.index} if weights is not None else set()
    members = steps + ([prod] if prod is not None else []) + [neg, pick]
    comp = Compound("negative-log-likelihood", prim, [logp], top, members, hidden=hidden,
                    extras=extras, notes=notes)
    comp.log_softmax = logsoftmaxes.get(logp.index)
    comp.onehot, comp.yname = onehot, yname
    comp.textbook_note = None
    return comp


def find(rec, reserved, auto_expanded, taken):
    """Every compound of the record, outermost first, none overlapping."""
    f = Finder(rec, reserved, auto_expanded)
    found = []

    def take(comp):
        if comp is None:
            return
        inside = comp.internal | {s.out.index for s in comp.members}
        if inside & f.claimed:
            return
        f.claimed |= comp.internal
        found.append(comp)

    softmaxes = {}
    for step in rec.steps:
        comp = softmax(f, step)
        if comp is not None:
            take(comp)
            if comp in found:
                softmaxes[comp.out.index] = comp
    for v in reversed(rec.values):
        if v.is_leaf or v.index in f.claimed:
            continue
        if v.step.prim.loss in ("cross-entropy", "soft-cross-entropy"):
            take(fused_cross_entropy(f, v.step, taken))
            continue
        for recognise in (binary_cross_entropy, squared_error,
                          lambda f, v: logits_binary_cross_entropy(f, v, taken)):
            comp = recognise(f, v)
            if comp is not None:
                take(comp)
                break
        else:
            take(manual_cross_entropy(f, v, softmaxes))
    logsoftmaxes = {}
    for v in reversed(rec.values):
        if not v.is_leaf and v.index not in f.claimed:
            comp = log_softmax(f, v)
            take(comp)
            if comp is not None and comp in found:
                logsoftmaxes[comp.out.index] = comp
    for v in reversed(rec.values):
        if not v.is_leaf and v.index not in f.claimed:
            take(softplus(f, v) or negative_log_likelihood(f, v, taken, logsoftmaxes))
    from .conv import find_convolutions
    for comp in find_convolutions(f):
        take(comp)
    for comp in found:
        comp.fill_numbers()
    return found
