"""Worksheets: a derivation with numbered blanks, its answer key, and a checker.

`cr.explain(loss, round=2).exercise(hide="chain")` hides the numbers of a kind of quantity —
'forward' (values computed in the forward pass), 'local' (local derivatives), 'chain'
(gradients ∂L/∂…: chain-rule products and sums over paths, and the update step's results,
which would give them away), 'update' (new parameter values and an optimizer's state), 'all'
— or the quantities listed by label (['∂L/∂w_o', 'y_h']). Every
occurrence of a hidden number becomes the same numbered blank, so a later line that uses it
shows the blank too (0.3 − 0.5 × [__2__] = [__3__]): the sheet is a hand calculation with
holes. The layer view and the gradient table are left out, since their numbers would give
answers away.

`ws.answers` maps each blank's label to its value as the derivation writes it, `ws.check({label
or blank number: value})` marks answers: an answer is accepted when it agrees with the key to
`sig` significant figures (3 by default: −0.029 for −0.02895543), and, for a value the sheet
rounds (a function value in textbook mode), also when it rounds to the key.
"""
import math

import numpy as np

from . import render, sections
from ..errors import ChainruleError

KINDS = {"forward": {"forward"}, "local": {"local"}, "chain": {"chain", "update"},
         "update": {"update"}, "all": {"forward", "local", "chain", "update"}}
PARTS = ("forward", "local", "chain", "paths", "update")   # no notes: the rules say it


class Worksheet:
    """A derivation with blanks. `str()` is the sheet as text; `.markdown()`, `.latex()`;
    `.answers`, `.key_text()`, `.check(answers)`.

    >>> import chainrule as cr
    >>> w = cr.tensor(0.3, dtype=cr.float64, requires_grad=True, name="w")
    >>> y = (w * 2.0).sigmoid()
    >>> y.name = "y"
    >>> ws = cr.explain(y, round=2).exercise(hide="forward")
    >>> ws.answers
    {'h1': 0.6, 'y': 0.65}
    >>> result = ws.check({1: 0.6, "y": 0.646})    # 0.646 rounds to 0.65: accepted
    >>> result.correct, result.total
    (2, 2)
    """

    def __init__(self, rep, hide="chain", sig=3):
        self.rep = rep
        self.sig = int(sig)
        m = rep.to_dict()
        self.model = m
        qs = m["quantities"]
        if isinstance(hide, str):
            if hide not in KINDS:
                raise ChainruleError(f"exercise: hide={hide!r} is not one of "
                                     f"{', '.join(map(repr, KINDS))}, or a list of quantity "
                                     "labels such as ['∂L/∂w']")
            wanted = [q for q, info in qs.items() if info["kind"] in KINDS[hide]]
        else:
            wanted = list(hide)
            unknown = [q for q in wanted if q not in qs]
            if unknown:
                raise ChainruleError(f"exercise: no quantity {unknown[0]!r} in this derivation;"
                                     f" it has: {', '.join(qs)}")
        wanted = {q for q in wanted if qs[q]["value"] is not None}
        self.blanks = {}
        for q in _appearance(m):
            if q in wanted and q not in self.blanks:
                self.blanks[q] = len(self.blanks) + 1
        self.hide = hide
        d = rep.d
        self.rounding = d.rounding
        self.answers = {q: _written(d, qs[q]) for q in self.blanks}
        self._rounded = {q: bool(qs[q]["rounded"]) for q in self.blanks}

    # ---- output ----
    def blocks(self):
        n = len(self.blanks)
        out = sections.blocks(self.model, self.blanks, PARTS)
        title = f"Worksheet: {self.model['title']}"
        rule = (f"Fill in the {n} blank{'s' * (n != 1)} {sections.blank_text(1)}"
                f"{' … ' + sections.blank_text(n) if n > 1 else ''}; a number that appears "
                "in several places has the same blank everywhere.")
        rounding = (f" Round every function value (σ, exp, ln, √, division, …) to "
                    f"{self.rounding} decimals as you go, as the key does; sums and products "
                    "stay exact." if self.rounding is not None else "")
        accept = (f" Answers are accepted to {self.sig} significant figures"
                  + (f", and a rounded function value also when it rounds to the key at "
                     f"{self.rounding} decimals." if self.rounding is not None else "."))
        return [("title", title), ("para", rule + rounding + accept)] + out[1:]

    def text(self):
        return render.text(self.blocks())

    def markdown(self):
        return render.markdown(self.blocks())

    def latex(self, standalone=False):
        return render.latex(self.blocks(), standalone=standalone)

    def __str__(self):
        return self.text()

    def _repr_markdown_(self):
        return self.markdown()

    def key_text(self):
        """The answer key, one blank per line."""
        d = self.rep.d
        lines = ["Answer key"]
        for q, k in self.blanks.items():
            lines.append(f"  {sections.blank_text(k)}  {q} = {_show(d, self.answers[q])}")
        return "\n".join(lines) + "\n"

    # ---- checking ----
    def tolerance(self, q, key):
        """How far an answer to blank `q` may be from `key` (one entry) and still count."""
        key = abs(float(key))
        if key == 0 or not math.isfinite(key):
            tol = 0.5 * 10.0 ** -(self.rounding + 2 if self.rounding is not None else 6)
        else:
            tol = 0.5 * 10.0 ** (math.floor(math.log10(key)) - self.sig + 1)
        if self._rounded[q] and self.rounding is not None:
            tol = max(tol, 0.5 * 10.0 ** -self.rounding)
        return tol * (1 + 1e-9) + 1e-12

    def check(self, answers):
        """Mark `answers` ({label or blank number: number or nested list}); returns a
        CheckResult with .correct, .total and one Verdict per blank."""
        by_number = {k: q for q, k in self.blanks.items()}
        given = {}
        for key, value in dict(answers).items():
            q = by_number.get(key) if isinstance(key, int) else key
            if q is None or q not in self.blanks:
                raise ChainruleError(f"check: {key!r} is not a blank of this worksheet; its "
                                     f"blanks are {', '.join(f'{k} ({q})' for q, k in self.blanks.items())}")
            given[q] = value
        verdicts = {}
        for q, k in self.blanks.items():
            expected = np.asarray(self.answers[q], dtype=np.float64)
            if q not in given:
                verdicts[q] = Verdict(q, k, None, self.answers[q], False, "no answer")
                continue
            try:
                got = np.asarray(given[q], dtype=np.float64)
            except (TypeError, ValueError):
                verdicts[q] = Verdict(q, k, given[q], self.answers[q], False, "not a number")
                continue
            if got.shape != expected.shape and got.size != expected.size:
                verdicts[q] = Verdict(q, k, given[q], self.answers[q], False,
                                      f"shape {got.shape}, expected {expected.shape}")
                continue
            got = got.reshape(expected.shape)
            tol = np.vectorize(lambda e: self.tolerance(q, e))(expected) if expected.size \
                else np.zeros(0)
            ok = bool(np.all(np.abs(got - expected) <= tol))
            far = float(np.max(np.abs(got - expected))) if expected.size else 0.0
            verdicts[q] = Verdict(q, k, given[q], self.answers[q], ok,
                                  "right" if ok else f"off by {far:.3g}")
        return CheckResult(verdicts)


class Verdict:
    __slots__ = ("label", "blank", "given", "expected", "ok", "reason")

    def __init__(self, label, blank, given, expected, ok, reason):
        self.label, self.blank, self.given, self.expected = label, blank, given, expected
        self.ok, self.reason = ok, reason

    def __repr__(self):
        return f"<Verdict {self.blank} {self.label}: {'✓' if self.ok else '✗'} {self.reason}>"


class CheckResult:
    """`.correct` of `.total` blanks right; `.verdicts` per blank label; `str()` a report."""

    def __init__(self, verdicts):
        self.verdicts = verdicts
        self.total = len(verdicts)
        self.correct = sum(v.ok for v in verdicts.values())

    @property
    def all_correct(self):
        return self.correct == self.total

    def __str__(self):
        lines = [f"{self.correct} of {self.total} right"]
        for v in self.verdicts.values():
            mark = "✓" if v.ok else "✗"
            lines.append(f"  {mark} {sections.blank_text(v.blank)} {v.label}: "
                         f"{'—' if v.given is None else v.given} ({v.reason})")
        return "\n".join(lines)

    __repr__ = __str__


def _appearance(m):
    """Quantity labels in the order they first appear on the sheet."""
    lines = list(m["forward"])
    for row in m["steps"]:
        lines += row["cells"] + row.get("notes", [])
    lines += [c["line"] for c in m["chains"] if c["line"]]
    lines += [p["line"] for p in m["path_sums"]]
    for u in m["updates"]:
        lines += u["lines"]
    for ln in lines:
        for _, _, q in sorted(ln["refs"]):
            yield q


def _written(d, info):
    value = np.asarray(info["value"] if not isinstance(info["value"], list)
                       else _floats(info["value"]), dtype=np.float64)
    if info["kind"] in ("local", "chain") and d.grad_decimals is not None:
        value = np.round(value, d.grad_decimals)
    return float(value.reshape(())) if value.size == 1 else value.tolist()


def _floats(x):
    if isinstance(x, list):
        return [_floats(v) for v in x]
    return float(x) if isinstance(x, str) else x


def _show(d, value):
    arr = np.asarray(value, dtype=np.float64)
    return d.num(arr) if arr.size == 1 else d.show(arr)
