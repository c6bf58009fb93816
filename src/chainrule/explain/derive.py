"""From a Record to a derivation: names, forward lines, local derivatives, chain products.

Naming: tensors keep the names users gave them (`name=`, or a parameter's qualified module
name). If no intermediate value has a name (and no layers were found), every node is named
h1, h2, … in forward order and each primitive is one step of the derivation (seed 001's
table). Otherwise the named values are the *stops* of the derivation and the unnamed
primitives between two stops are folded into one factor, as a textbook folds
½(y − y_o)² into ∂Loss/∂y_o (seed 004). The loss is always a stop ("L" if unnamed).
"""
import re

import numpy as np

from . import fmt

MAX_PATHS = 64    # beyond this many paths a parameter's products are summarised, not listed
MAX_FACTORS = 40  # a path with more stops than this is summarised too


class Style:
    """How names and operators are written: plain text or LaTeX."""

    latex = False
    times = " × "
    dot = " · "
    plus = " + "

    def template(self, t):
        return t

    def name(self, n):
        return n

    def frac(self, top, bottom):
        return f"∂{top}/∂{bottom}"

    def number(self, text):
        return text


class LatexStyle(Style):
    latex = True
    times = r" \times "
    dot = r" \cdot "

    def template(self, t):
        return fmt.latex_template(t)

    def name(self, n):
        return fmt.latex_name(n)

    def frac(self, top, bottom):
        return fmt.dfrac_latex(top, bottom)


TEXT, LATEX = Style(), LatexStyle()


class Derivation:
    """Names and formulas over a Record; shared by every renderer."""

    def __init__(self, rec, digits, grad_decimals=None, layer_names=None, expand=False):
        self.rec = rec
        self.digits = digits
        self.grad_decimals = grad_decimals
        self.consumers = {}
        for step in rec.steps:
            for i, v in enumerate(step.inputs):
                self.consumers.setdefault(v.index, []).append((step, i))
        self._name(layer_names or {}, expand)

    # ---- names ----
    def _name(self, layer_names, expand):
        rec = self.rec
        inner_named = any(v.user_named for v in rec.values if not v.is_leaf)
        self.expanded = expand or (not inner_named and not layer_names)
        h = p = 0
        taken = {v.name for v in rec.values if v.name}
        for v in rec.values:
            if v.is_leaf:
                if v.name is None:
                    if v.is_param:
                        p += 1
                        v.name = f"p{p}"
                    elif not v.scalar:        # an unnamed data tensor: x, x2, x3, ...
                        v.name = next(n for n in ("x", *(f"x{k}" for k in range(2, 10 ** 6)))
                                      if n not in taken)
                        taken.add(v.name)
            else:
                h += 1
                if v.name is None and v.index in layer_names:
                    v.name = layer_names[v.index]
                if v.name is None and self.expanded:
                    v.name = f"h{h}"
        if rec.root.name is None:
            rec.root.name = "L"

    def is_stop(self, v):
        return v.is_leaf or v.name is not None

    def stops(self):
        return [v for v in self.rec.values if not v.is_leaf and v.name is not None]

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
        return fmt.value_text(arr, self.digits)

    # ---- expressions ----
    def atom(self, v, style, numeric):
        """(text, binding) of value `v` inside another formula, or None to inline it."""
        if not v.is_leaf and not self.is_stop(v):
            return None
        if (v.is_leaf and v.name is None) or (numeric and v.scalar):
            t = self.num(v.value)
            return t, (3 if t.startswith("-") else fmt.ATOM)
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
        step = v.step
        names = self._operand_names(step, style, numeric)
        template = fmt.forward_template(step.prim, step.out.value.ndim)
        for key in fmt.missing_optional(step.prim, len(step.inputs)):
            template = re.sub(rf"\s*\+\s*{key}\b", "", template)
        text = fmt.fill(style.template(template), names, step.prim, forward=True)
        return text, step.prim.precedence

    def _operand_names(self, step, style, numeric):
        keys = fmt.operand_keys(step.prim, len(step.inputs))
        names = {k: self._expr(v, style, numeric, False) for k, v in zip(keys, step.inputs)}
        for k in ("lo", "hi"):
            if k in step.params:
                p = step.params[k]
                names[k] = ("-∞" if k == "lo" else "∞") if p is None else self.num(p), fmt.ATOM
        return names

    def numeric_ok(self, step):
        return all(v.scalar for v in step.inputs) and step.out.scalar

    # ---- local derivatives ----
    def edge_formula(self, step, i, style=TEXT, numeric=False):
        """∂out/∂input_i of one primitive as a formula in the operands' names (or values)."""
        prim = step.prim
        names = self._operand_names(step, style, numeric)
        base_exp = fmt.power_operands(prim, len(step.inputs))   # (0, 1) for a^b
        exponent = step.inputs[base_exp[1]] if base_exp is not None else None
        if base_exp is not None and i == base_exp[0] and exponent.is_leaf and \
                exponent.scalar and not exponent.tensor.requires_grad:
            # a constant exponent n: n·a^(n-1), the power rule with n - 1 worked out
            n = float(exponent.value)
            key = fmt.operand_keys(prim, len(step.inputs))[i]
            base = names[key][0] if names[key][1] >= fmt.ATOM else f"({names[key][0]})"
            m = self.num(n - 1)
            power = "" if n - 1 == 1 else (f"^{{{m}}}" if style.latex else f"^{m}")
            sep = style.dot.strip() if style.latex else "·"
            return f"{self.num(n)}{sep}{base}{power}"
        out = step.out
        names["y"] = self._expr(out, style, numeric, not self.is_stop(out))
        return fmt.fill(style.template(prim.derivs[i]), names, prim, juxtapose=numeric)

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
            for i, u in enumerate(v.step.inputs):
                stack.append((u, path + [(v.step, i)]))
            if len(paths) > MAX_PATHS:
                break
        paths.reverse()
        return paths

    def stop_inputs(self, v):
        """The stops that value `v` is computed from directly (through unnamed nodes)."""
        found, seen, stack = [], set(), list(reversed(v.step.inputs))
        while stack:
            u = stack.pop()
            if u.index in seen:
                continue
            seen.add(u.index)
            if self.is_stop(u) and u.name is not None:
                if self.expanded or not u.is_leaf or u.tensor.requires_grad:
                    found.append(u)     # inputs and targets: only in the full table
            elif not u.is_leaf:
                stack.extend(reversed(u.step.inputs))
        return found

    def factor(self, a, b, style=TEXT, numeric=False):
        """∂a/∂b between two adjacent stops: (formula, value or None); with `numeric`, the
        formula has the operands' values in place of their names."""
        paths = self.segments(a, b)
        terms, value = [], 0.0
        for path in paths:
            parts = [self.edge_formula(s, i, style, numeric) for s, i in path]
            parts = [p for p in parts if p != "1" and not p.startswith("1 (")] or [parts[0]]
            terms.append(style.dot.join(_wrap_compound(p) if len(parts) > 1 else p
                                        for p in parts))
            vals = [s.local[i] for s, i in path]
            if value is not None and all(x is not None and x.size == 1 for x in vals):
                value += float(np.prod([float(x.reshape(())) for x in vals]))
            else:
                value = None
        text = style.plus.join(terms) if terms else "0"
        if numeric:
            text = to_times(text, style)
        return text, value


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
            for u in reversed(v.step.inputs):
                if u.is_leaf and u is not param:
                    continue
                stack.append((u, seq + [u] if self.is_stop(u) else seq))
        return seqs, count

    def _count_paths(self, param):
        ways = {self.rec.root.index: 1}
        total = 0
        for step in reversed(self.rec.steps):
            w = ways.get(step.out.index, 0)
            if not w:
                continue
            for u in {u.index: u for u in step.inputs}.values():   # x·x is one path
                if u is param:
                    total += w
                elif not u.is_leaf:
                    ways[u.index] = ways.get(u.index, 0) + w
        return total


def to_times(text, style):
    """Numbers multiply with ×, as in the seeds: '0.2 · 1' -> '0.2 × 1'."""
    if style.latex:
        return re.sub(r"\s*(\\cdot|·)\s*", r" \\times ", text)
    return re.sub(r"\s*·\s*", " × ", text)


def _wrap_compound(text):
    """Parenthesise a factor that is a sum or starts with a minus sign."""
    depth = 0
    for k, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and k and text[k - 1:k + 2] in (" + ", " - "):
            return f"({text})"
    return f"({text})" if text.startswith("-") else text


