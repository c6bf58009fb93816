"""Checked derivations: every local derivative rule against a float64 finite difference.

For a node y = f(x₁, …) and input i, with random directions u (shaped like xᵢ) and v (shaped
like y), the VJP rule must satisfy ⟨vjpᵢ(v), u⟩ = d/dε ⟨v, f(…, xᵢ + εu, …)⟩ at ε = 0. The
right side is a central difference in float64 at the node's own input values (the rounded
ones in textbook mode). For scalars u = v = 1 and the two sides are simply the printed local
derivative and the finite-difference slope.
"""
import numpy as np

from .. import autograd

EPS = 1e-6


class Check:
    __slots__ = ("ok", "rule", "numeric", "detail")

    def __init__(self, ok, rule, numeric):
        self.ok, self.rule, self.numeric = ok, rule, numeric
        self.detail = f"rule {rule:.8g} vs finite difference {numeric:.8g}"

    def __repr__(self):
        return f"<Check {'ok' if self.ok else 'FAILED'}: {self.detail}>"


def _params64(step):
    """The node's parameters for a float64 check: a dtype it was told to produce (cast's) is
    float64 too, so the finite difference is not rounded back to float32."""
    return {k: np.dtype(np.float64) if isinstance(v, np.dtype) and v.kind == "f" else v
            for k, v in step.params.items()}


def _forward(step, arrays):
    return np.asarray(step.original.forward(*arrays, **_params64(step)), dtype=np.float64)


def _at_a_kink(prim, i, x):
    """Whether input i sits where its primitive has a kink (the registry's `domain`: a tie
    for "distinct", a zero for "nonzero"): a finite difference cannot judge a rule there."""
    domain = prim.input_domain(i)
    x = np.asarray(x)
    if domain == "distinct" and x.size > 1:
        return bool(np.unique(x).size < x.size)
    if domain == "nonzero":
        return bool(np.any(x == 0))
    return False


def check_edge(step, i, rng):
    """The Check of input i of `step`, or None where there is nothing to check (or where the
    input sits at a kink of the primitive, where a finite difference means nothing)."""
    prim = getattr(step, "original", step.prim)     # judge the rule, not textbook rounding
    rule = prim.vjp_rule(i)
    xs = [np.array(v.value, dtype=np.float64) if v.value.dtype.kind == "f" else v.value
          for v in step.inputs]
    inp = step.inputs[i]
    if rule is None or inp.value.dtype.kind != "f" or (inp.is_leaf and inp.name is None and
                                                       not inp.tensor.requires_grad):
        return None
    if _at_a_kink(prim, i, xs[i]):
        return None
    y = _forward(step, xs)
    scalar = y.size == 1 and xs[i].size == 1
    u = np.ones_like(xs[i]) if scalar else rng.standard_normal(xs[i].shape)
    v = np.ones_like(y) if scalar else rng.standard_normal(y.shape)
    plus, minus = list(xs), list(xs)
    plus[i] = xs[i] + EPS * u
    minus[i] = xs[i] - EPS * u
    numeric = float(np.sum(v * (_forward(step, plus) - _forward(step, minus))) / (2 * EPS))
    # the rule on arrays, as the engine's first-order backward runs it
    gd = np.asarray(rule(v, y, *xs, **_params64(step)), dtype=np.float64)
    if gd.shape != xs[i].shape:
        gd = autograd.sum_to(gd, xs[i].shape)
    analytic = float(np.sum(gd * u))
    scale = max(1.0, abs(analytic), abs(numeric))
    ok = abs(analytic - numeric) <= 1e-5 * scale
    return Check(bool(ok), analytic, numeric)


def verify_record(rec, seed=0):
    """Fill `step.check[i]` for every input of every recorded step."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        for step in rec.steps:
            for i in range(len(step.inputs)):
                step.check[i] = check_edge(step, i, rng)
