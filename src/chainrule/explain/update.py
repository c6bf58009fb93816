"""The update step: each parameter's old value, gradient, learning rate and new value."""
import numpy as np

from .. import autograd
from . import fmt
from .derive import LATEX, TEXT


class UpdateLine:
    __slots__ = ("name", "old", "grad", "new", "lr", "k")

    def __init__(self, name, old, grad, new, lr, k):
        self.name, self.old, self.grad, self.new, self.lr, self.k = name, old, grad, new, lr, k

    def _parts(self, d, style):
        n = style.name(self.name)
        lhs = (f"{n}^{{({self.k + 1})}}" if style.latex else f"{n}({self.k + 1})")
        before = (f"{n}^{{({self.k})}}" if style.latex else f"{n}({self.k})")
        eta = r"\eta" if style.latex else "η"
        minus = " - " if style.latex else f" {fmt.MINUS} "
        scalar = np.size(self.old) == 1
        rule = f"{before}{minus}{eta}{style.dot}{style.frac(style.name(d.rec.root.name), n)}"
        if self.lr is None:         # another optimizer: show what it did
            rule = f"{before}{minus}Δ{n}" if not style.latex else rf"{before} - \Delta {n}"
        parts = [lhs, rule]
        if scalar and self.lr is not None:
            g = d.gnum(self.grad)
            g = f"({g})" if g.startswith("-") else g
            times = style.times
            parts.append(f"{d.num(self.old)}{minus}{d.num(self.lr)}{times}{g}")
        show = (lambda a: d.show(a)) if style is TEXT else \
            (lambda a: _latex_value(d.show(a)))
        if not scalar and self.lr is None:
            parts.append(f"{show(self.old)}{minus}{show(self.old - self.new)}")
        parts.append(show(self.new))
        return parts

    def text(self, d):
        return " = ".join(self._parts(d, TEXT))

    def latex(self, d):
        return " = ".join(self._parts(d, LATEX))


def _latex_value(t):
    return rf"\text{{{t}}}" if t.startswith("tensor") else t.replace("…", r"\dots")


class Update:
    """What one optimisation step did; `lines` holds one UpdateLine per parameter."""

    def __init__(self, lr, optimizer, lines, iteration, derivation=None):
        self.lr, self.optimizer, self.lines, self.iteration = lr, optimizer, lines, iteration
        self.d = derivation

    def __str__(self):
        return "\n".join([self.describe()] + [line.text(self.d) for line in self.lines])

    def describe(self):
        if self.optimizer is not None:
            return (f"{type(self.optimizer).__name__}.step(): each parameter's old value, the "
                    "change the optimizer made, and the new value.")
        return (f"Gradient descent with learning rate η = {fmt.num(self.lr)}: "
                "new value = old value − η × gradient.")


def sgd_step(d, lr, iteration=0):
    """Apply p ← p − lr·g to every parameter in the record, with g as the derivation wrote it
    (in textbook mode the rounded gradient, exactly as a hand calculation continues)."""
    lines = []
    with autograd.no_grad():
        for v in d.rec.params():
            if v.grad is None:
                continue
            t = v.tensor
            old = np.array(t.data, dtype=np.float64, copy=True)
            g = d.gvalue(v.grad)
            new = old - lr * g
            np.copyto(t.data, new.astype(t.data.dtype), casting="same_kind")
            t._version += 1
            lines.append(UpdateLine(v.name, old, g, np.array(t.data, np.float64), lr, iteration))
    return Update(lr, None, lines, iteration, d)


def optimizer_step(d, optimizer, iteration=0):
    """Run `optimizer.step()` and report old value, gradient and new value per parameter; for
    plain SGD (no momentum, weight decay) the lr is shown in the familiar form."""
    params = d.rec.params()
    olds = [np.array(v.tensor.data, dtype=np.float64, copy=True) for v in params]
    optimizer.step()
    lr = _plain_sgd_lr(optimizer)
    lines = [UpdateLine(v.name, old, d.gvalue(v.grad) if v.grad is not None else 0.0,
                        np.array(v.tensor.data, np.float64), lr, iteration)
             for v, old in zip(params, olds)]
    return Update(lr, optimizer if lr is None else None, lines, iteration, d)


def _plain_sgd_lr(opt):
    if type(opt).__name__ != "SGD":
        return None
    groups = getattr(opt, "param_groups", None)
    if not groups or len(groups) != 1:
        return None
    g = groups[0]
    if g.get("momentum", 0) or g.get("weight_decay", 0):
        return None
    return g.get("lr")
