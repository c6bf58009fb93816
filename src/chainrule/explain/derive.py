"""From a Record to a derivation: names, forward lines, local derivatives, chain products.

Naming: tensors keep the names users gave them (`name=`, or a parameter's qualified module
name). Unnamed data is named by its role: inputs x, x2, …; targets t, t2, … (the data a loss
compares with); integer labels `labels`. If no intermediate value has a name (only the output,
or nothing; and no layers were found), every node is named h1, h2, … in forward order and each
primitive is one step of the derivation (seed 001's table): folding never hides the chain a
learner asked about. Otherwise the named values are the *stops* of the derivation and the
unnamed primitives between two stops are folded into one factor, as a textbook folds
½(y − y_o)² into ∂Loss/∂y_o (seed 004). The loss is always a stop ("L" if unnamed).

Textbook compounds (patterns.py) — a squared error, a cross-entropy, a softmax, a convolution —
are steps of their own in every mode but `expand=True`: the derivation works on a *view* of
the record in which each compound replaces the real steps inside it.

Numbers that are the value of a named quantity (a value, a local derivative, a gradient) are
marked with `fmt.tag` as lines are built, so the data model can say where each one stands.
"""
import re

import numpy as np

from .. import autograd
from . import fmt, patterns

MAX_PATHS = 64    # beyond this many paths a parameter's products are summarised, not listed
MAX_FACTORS = 40  # a path with more stops than this is summarised too
SMALL = 8         # operands with at most this many entries are written out in numeric lines
LONG = 110        # a numeric line longer than this is left out (the value alone is shown)


class Style:
    """How names and operators are written: plain text or LaTeX."""

    latex = False
    times = " × "
    dot = " · "
    plus = " + "
    odot = " ⊙ "

    def template(self, t):
        return t

    def name(self, n):
        return n

    def frac(self, top, bottom):
        return f"∂{top}/∂{bottom}"

    def number(self, text):
        return text

    def value(self, text):
        return text


class LatexStyle(Style):
    latex = True
    times = r" \times "
    dot = r" \cdot "
    odot = r" \odot "

    def template(self, t):
        return fmt.latex_template(t)

    def name(self, n):
        return fmt.latex_name(n)

    def frac(self, top, bottom):
        return fmt.dfrac_latex(top, bottom)

    def value(self, text):
        return latex_value(text)


TEXT, LATEX = Style(), LatexStyle()


def latex_value(text):
    """A displayed value inside LaTeX math."""
    if fmt.plain(text).startswith("tensor("):
        return rf"\text{{{text}}}"
    return text.replace("…", r"\dots")


class Derivation:
    """Names and formulas over a Record; shared by every renderer."""

    def __init__(self, rec, digits, grad_decimals=None, layer_names=None, expand=False,
                 full=False, rounding=None):
        self.rec = rec
        self.digits = digits
        self.grad_decimals = grad_decimals
        self.rounding = rounding
        self.full = full
        self.quantities = {}
        layer_names = layer_names or {}
        inner_named = any(v.user_named for v in rec.values
                          if not v.is_leaf and v is not rec.root)
        self.auto_expanded = not expand and not inner_named and not layer_names
        self.expanded = expand or self.auto_expanded
        taken = {v.name for v in rec.values if v.name} | set(layer_names.values())
        self.compounds = [] if expand else patterns.find(rec, set(layer_names),
                                                         self.auto_expanded, taken)
        self._view()
        self._roles()
        self._name(layer_names, taken)

    # ---- the view: compounds in place of the steps inside them ----
    def _view(self):
        rec = self.rec
        hidden = set()
        for c in self.compounds:
            hidden |= c.internal
        self.hidden = hidden
        self.view_step = {s.out.index: s for s in rec.steps if s.out.index not in hidden}
        for c in self.compounds:
            self.view_step[c.out.index] = c
        self.values = [v for v in rec.values if v.index not in hidden]
        self.steps = [self.view_step[v.index] for v in self.values if v.index in self.view_step]
        self.consumers = {}
        for step in self.steps:
            for i, v in enumerate(step.inputs):
                self.consumers.setdefault(v.index, []).append((step, i))

    def step_of(self, v):
        return self.view_step.get(v.index)

    def _roles(self):
        given = {}
        for c in self.compounds:
            given.update(c.roles)
        for v in self.rec.values:
            if v.index in self.hidden:
                v.role = "hidden"
            elif not v.is_leaf:
                v.role = "value"
            elif v.is_param:
                v.role = "parameter"
            elif v.index in given:
                v.role = given[v.index]
            elif v.scalar and not v.user_named:
                v.role = "constant"
            else:
                v.role = "input"

    def _name(self, layer_names, taken):
        rec = self.rec

        def free(*candidates):
            return patterns.free_name(taken, *candidates)

        h = p = 0
        for v in self.values:
            if v.is_leaf:
                if v.name is None:
                    if v.is_param:
                        p += 1
                        v.name = free(f"p{p}")
                    elif v.role == "target":
                        v.name = free("t", *(f"t{k}" for k in range(2, 10)))
                    elif v.role == "input":
                        v.name = free("x", *(f"x{k}" for k in range(2, 10)))
            else:
                h += 1
                if v.name is None and v.index in layer_names:
                    v.name = layer_names[v.index]
                if v.name is None and self.expanded and not (
                        v is rec.root and v.index in self._loss_outputs()):
                    v.name = f"h{h}"
        if rec.root.name is None:
            rec.root.name = "L"

    def _loss_outputs(self):
        """Values that a loss compound computes (an unnamed one is called L, not h7)."""
        return {c.out.index for c in self.compounds
                if c.kind not in ("softmax", "convolution")}

    def is_stop(self, v):
        return v.is_leaf or v.name is not None

    def stops(self):
        return [v for v in self.values if not v.is_leaf and v.name is not None]

    # ---- quantities (what a worksheet can hide, what the data model points at) ----
    def quantity(self, label, kind, value, rounded=False):
        """Register the quantity `label` and return the label its numbers are tagged with
        (a second, different quantity with the same label gets a prime)."""
        value = None if value is None else np.asarray(value, dtype=np.float64)
        while label in self.quantities:
            old = self.quantities[label]
            if old["kind"] == kind and _same(old["value"], value):
                return label
            label += "′"
        self.quantities[label] = dict(kind=kind, value=value, rounded=rounded)
        return label

    # ---- numbers ----
    def num(self, x):
        return fmt.num(x, self.digits)

    def gnum(self, x):
        """A backward quantity; in textbook mode written to `grad_decimals` decimals."""
        x = float(np.asarray(x).reshape(()))
        if self.grad_decimals is not None:
            x = round(x, self.grad_decimals)
        return fmt.num(x, self.digits)

    def gvalue(self, x):
        """A gradient as written (rounded in textbook mode), used by the update step."""
        x = np.asarray(x, dtype=np.float64)
        return np.round(x, self.grad_decimals) if self.grad_decimals is not None else x

    def show(self, arr):
        return fmt.value_text(arr, self.digits, None if self.full else fmt.SUMMARY)

    def gshow(self, arr):
        """A gradient array or number as written."""
        arr = np.asarray(arr)
        return self.gnum(arr) if arr.size == 1 else self.show(self.gvalue(arr))

    def value_text(self, v):
        """The value of stop `v` as shown in a numeric line, tagged."""
        t = self.num(v.value) if v.scalar else self.show(v.value)
        return fmt.tag(v.name, t)

    # ---- expressions ----
    def small(self, v):
        return v.value.size <= SMALL and v.value.ndim <= 2 and v.image is None

    def atom(self, v, style, numeric):
        """(text, binding) of value `v` inside another formula, or None to inline it."""
        if not v.is_leaf and not self.is_stop(v):
            return None
        if v.is_leaf and v.name is None:
            t = self.num(v.value) if v.scalar else self.show(v.value)
            return t, (3 if t.startswith("-") else fmt.ATOM)
        if numeric and self.small(v):
            t = self.num(v.value) if v.scalar else self.show(v.value)
            return fmt.tag(v.name, t), (3 if t.startswith("-") else fmt.ATOM)
        return style.name(v.name), fmt.ATOM

    def expr(self, v, style=TEXT, numeric=False):
        """The formula that computes `v` from the stops before it."""
        text = self._expr(v, style, numeric, True)[0]
        return to_times(text, style) if numeric else text

    def _expr(self, v, style, numeric, top):
        if not top:
            a = self.atom(v, style, numeric)
            if a is not None:
                return a
        step = self.step_of(v)
        names = self._operand_names(step, style, numeric)
        template = self._forward_template(step.prim, style, step.out.value.ndim)
        for key in fmt.missing_optional(step.prim, len(step.inputs)):
            template = re.sub(rf"\s*\+\s*{key}\b", "", template)
        text = fmt.fill(template, names, step.prim, forward=True)
        return text, step.prim.precedence

    def _forward_template(self, prim, style, ndim):
        if style.latex and getattr(prim, "latex_formula", None):
            return prim.latex_formula
        return style.template(fmt.forward_template(prim, ndim))

    def _deriv_template(self, prim, i, style):
        if style.latex and getattr(prim, "latex_derivs", None):
            return prim.latex_derivs[min(i, len(prim.latex_derivs) - 1)]
        return style.template(prim.derivs[min(i, len(prim.derivs) - 1)])  # variadic: one

    def _operand_names(self, step, style, numeric):
        keys = fmt.operand_keys(step.prim, len(step.inputs))
        names = {k: self._expr(v, style, numeric, False) for k, v in zip(keys, step.inputs)}
        for k in ("lo", "hi"):
            if k in step.params:
                p = step.params[k]
                names[k] = ("-∞" if k == "lo" else "∞") if p is None else self.num(p), fmt.ATOM
        if numeric:
            for k, c in getattr(step.prim, "constants", {}).items():
                c = np.asarray(c)
                names[k] = (self.num(c) if c.size == 1 else self.show(c)), fmt.ATOM
        return names

    def numeric_ok(self, step):
        small = all(self.small(v) or (v.is_leaf and v.name is None and v.scalar)
                    for v in step.inputs) and self.small(step.out)
        consts = all(np.size(c) <= SMALL for c in getattr(step.prim, "constants", {}).values())
        return small and consts

    # ---- local derivatives ----
    def edge_formula(self, step, i, style=TEXT, numeric=False):
        """∂out/∂input_i of one step as a formula in the operands' names (or values)."""
        prim = step.prim
        names = self._operand_names(step, style, numeric)
        base_exp = fmt.power_operands(prim, len(step.inputs)) \
            if not isinstance(prim, patterns.VirtualPrim) else None
        exponent = step.inputs[base_exp[1]] if base_exp is not None else None
        if base_exp is not None and i == base_exp[0] and exponent.is_leaf and \
                exponent.scalar and not exponent.tensor.requires_grad:
            # a constant exponent n: n·a^(n-1), the power rule with n - 1 worked out
            n = float(exponent.value)
            key = fmt.operand_keys(prim, len(step.inputs))[i]
            base = names[key][0] if names[key][1] >= fmt.ATOM else f"({names[key][0]})"
            m = self.num(n - 1)
            power = "" if n - 1 == 1 else (f"^{{{m}}}" if style.latex else f"^{m}")
            sep = style.dot.strip() + " " if style.latex else "·"
            return f"{self.num(n)}{sep}{base}{power}"
        out = step.out
        names["y"] = self._expr(out, style, numeric, not self.is_stop(out))
        return fmt.fill(self._deriv_template(prim, i, style), names, prim, juxtapose=numeric)

    def local_of(self, step, i):
        """(value, kind) of one edge's local derivative: kind 'scalar' (a number),
        'elementwise' (an array shaped like the output), 'gradient' (shaped like the input,
        the output a scalar), 'jacobian' (a matrix per row), or (None, None)."""
        local = step.local[i]
        if local is None:
            if step.node is not None and step.prim.algebra == "total" and step.out.scalar:
                # Σ x: ∂(Σ x)/∂x is 1 for every entry, the gradient of a scalar
                return np.ones(step.inputs[i].value.shape), "gradient"
            return None, None
        kinds = getattr(step, "local_kind", None)
        kind = kinds[i] if kinds is not None else "elementwise"
        local = np.asarray(local, np.float64)
        if local.size == 1 and step.out.scalar and step.inputs[i].scalar:
            return float(local.reshape(())), "scalar"
        return local, kind

    def segments(self, a, b):
        """Every edge path from value `a` down to value `b` through non-stop values only."""
        paths = []
        stack = [(a, [])]
        while stack:
            v, path = stack.pop()
            if v is b and path:
                paths.append(path)
                continue
            if v.is_leaf or (path and self.is_stop(v)):
                continue
            step = self.step_of(v)
            for i, u in enumerate(step.inputs):
                stack.append((u, path + [(step, i)]))
            if len(paths) > MAX_PATHS:
                break
        paths.reverse()
        return paths

    def stop_inputs(self, v):
        """The stops that value `v` is computed from directly (through unnamed nodes)."""
        found, seen, stack = [], set(), list(reversed(self.step_of(v).inputs))
        while stack:
            u = stack.pop()
            if u.index in seen:
                continue
            seen.add(u.index)
            if self.is_stop(u) and u.name is not None:
                if u.is_leaf and u.role in ("target", "labels"):
                    continue
                if self.expanded or not u.is_leaf or u.tensor.requires_grad:
                    found.append(u)     # inputs: only in the full table
            elif not u.is_leaf:
                stack.extend(reversed(self.step_of(u).inputs))
        return found

    def factor(self, a, b, style=TEXT, numeric=False):
        """∂a/∂b between two adjacent stops: (formula, value or None); with `numeric`, the
        formula has the operands' values in place of their names."""
        paths = self.segments(a, b)
        terms = []
        for path in paths:
            parts = [self.edge_formula(s, i, style, numeric) for s, i in path]
            parts = [p for p in parts if fmt.plain(p) != "1" and
                     not fmt.plain(p).startswith("1 (")] or [parts[0]]
            terms.append(style.dot.join(_wrap_compound(p) if len(parts) > 1 else p
                                        for p in parts))
        text = style.plus.join(terms) if terms else "0"
        if numeric:
            text = to_times(text, style)
        return text, self.factor_value(a, b)[0]

    def factor_value(self, a, b):
        """(value, kind) of ∂a/∂b: a number ('scalar'), an array shaped like a's entries
        ('elementwise'), the gradient of a scalar a shaped like b ('gradient'), or None."""
        total, kind = None, None
        for path in self.segments(a, b):
            vals = [self.local_of(s, i) for s, i in path]
            if any(v is None or k in (None, "jacobian") for v, k in vals):
                return None, None
            kinds = {k for _, k in vals}
            if kinds == {"scalar"}:
                value, k = float(np.prod([v for v, _ in vals])), "scalar"
            elif "gradient" in kinds:
                if vals[0][1] != "gradient" or "gradient" in {k for _, k in vals[1:]}:
                    return None, None
                value = np.asarray(vals[0][0])
                for v, _ in vals[1:]:
                    value = value * v
                try:
                    value = np.asarray(autograd.sum_to(value, b.value.shape))
                except Exception:
                    return None, None
                k = "gradient"
            else:
                value = np.ones(())
                for v, _ in vals:
                    value = value * v
                k = "elementwise"
            if total is None:
                total, kind = value, k
            elif kind != k:
                return None, None
            else:
                try:
                    total = total + value
                except ValueError:
                    return None, None
        return total, kind

    # ---- chain rule per parameter ----
    def stop_paths(self, param):
        """Paths from the loss to `param`, as stop sequences, each once."""
        count = self._count_paths(param)
        if count > MAX_PATHS:
            return None, count
        seqs, stack = [], [(self.rec.root, [self.rec.root])]
        while stack:
            v, seq = stack.pop()
            if len(seq) > MAX_FACTORS:
                return None, count
            if v is param:
                if seq not in seqs:
                    seqs.append(seq)
                continue
            if v.is_leaf:
                continue
            for u in reversed(self.step_of(v).inputs):
                if u.is_leaf and u is not param:
                    continue
                stack.append((u, seq + [u] if self.is_stop(u) else seq))
        return seqs, count

    def _count_paths(self, param):
        ways = {self.rec.root.index: 1}
        total = 0
        for step in reversed(self.steps):
            w = ways.get(step.out.index, 0)
            if not w:
                continue
            for u in {u.index: u for u in step.inputs}.values():   # x·x is one path
                if u is param:
                    total += w
                elif not u.is_leaf:
                    ways[u.index] = ways.get(u.index, 0) + w
        return total

    def chain_terms(self, seq):
        """The numbers of one stop path L → … → p as the chain rule multiplies them:
        ('scalar', [factor values], product) or ('array', [(value, label)], result shaped like
        p, summed) or None where the factors are not all elementwise."""
        vals = [self.factor_value(a, b) for a, b in zip(seq, seq[1:])]
        if any(v is None for v, _ in vals):
            return None
        if all(k == "scalar" for _, k in vals):
            return "scalar", [v for v, _ in vals], float(np.prod([v for v, _ in vals]))
        # scalar factors, then one gradient of a scalar (a reduction), then elementwise ones
        kinds = [k for _, k in vals]
        lead = 0
        while lead < len(kinds) and kinds[lead] == "scalar":
            lead += 1
        if lead == len(kinds) or kinds[lead] != "gradient" or \
                any(k not in ("scalar", "elementwise") for k in kinds[lead + 1:]):
            return None
        shape = np.shape(vals[lead][0])
        g = np.ones(())
        for v, _ in vals:
            g = g * np.asarray(v, np.float64)
        if any(np.shape(v) not in ((), shape) for v, _ in vals[lead + 1:]) or not shape:
            return None
        param = seq[-1]
        try:
            summed = np.asarray(autograd.sum_to(g, param.value.shape))
        except Exception:
            return None
        return "array", [v for v, _ in vals], summed

    def path_sums(self):
        """Values used by several later values: [(v, [(consumer stop, ∂c/∂v value)]), …]."""
        out = []
        for v in self.stops():
            if v is self.rec.root or v.grad is None:
                continue
            above = []
            for c in self.values:
                if c is v or c.is_leaf or not self.is_stop(c):
                    continue
                if self.segments(c, v):
                    above.append(c)
            if len(above) >= 2:
                out.append((v, above))
        return out


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)


def to_times(text, style):
    """Numbers multiply with ×, as in the seeds: '0.2 · 1' -> '0.2 × 1'."""
    if style.latex:
        return re.sub(r"\s*(\\cdot|·)\s*", r" \\times ", text)
    return re.sub(r"\s*·\s*", " × ", text)


def _wrap_compound(text):
    """Parenthesise a factor that is a sum or starts with a minus sign."""
    depth = 0
    bare = fmt.plain(text)
    for k, ch in enumerate(bare):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and k and bare[k - 1:k + 2] in (" + ", " - "):
            return f"({text})"
    return f"({text})" if bare.startswith("-") else text
