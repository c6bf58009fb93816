"""`explain(loss)`: run the real backward pass and keep a derivation of it."""
import numbers

from . import fmt, record, render, sections
from .derive import Derivation


def explain(loss, *, round=None, grad_decimals=None, verify=False, digits=None,
            expand=False, gradient=None, retain_graph=False, title=None):
    """Run `loss`'s backward pass (filling `.grad` exactly as `loss.backward()` does) and
    return an Explanation: forward values, local derivatives, chain-rule products per
    parameter, the layer view for networks, and (after `.step(lr)`) the update.

    round:          textbook mode. Replays the forward pass rounding every function value
                    (σ, exp, log, division, …) to `round` decimals before it is used, like a
                    hand calculation; the backward pass then runs on that graph. Gradients are
                    written to `grad_decimals` decimals (default 4 × round: a product of two
                    factors y(1 − y) with 2·round decimals each) and `.step` uses them as
                    written. Use float64 tensors to see every digit.
    verify:         check every local derivative against a float64 finite difference (✓/✗).
    digits:         significant digits shown (default 10 for float64, 7 for float32).
    gradient:       for a non-scalar output, the vector of the vector-Jacobian product (as
                    in `loss.backward(gradient)`).
    expand:         every primitive is a step of the derivation (unnamed ones become h1,
                    h2, …), even when some values are named; by default unnamed primitives
                    between named values are folded into one factor.

    >>> import chainrule as cr
    >>> w = cr.tensor(0.0, dtype=cr.float64, requires_grad=True, name="w")
    >>> x = cr.tensor(1.0, dtype=cr.float64, name="x")
    >>> h = 1 / (1 + (-(w * x)).exp())
    >>> rep = cr.explain(h)
    >>> w.grad.item()
    0.25
    >>> print(rep.chain_text().strip())
    ∂h5/∂w = ∂h5/∂h4 · ∂h4/∂h3 · ∂h3/∂h2 · ∂h2/∂h1 · ∂h1/∂w = -0.25 × 1 × 1 × (-1) × 1 = 0.25
    """
    _check_args(loss, round, digits)
    unrounded = {}
    target = loss
    if round is not None:
        target, unrounded = record.replay_rounded(loss, int(round))
        if grad_decimals is None:
            grad_decimals = 4 * int(round)
    rec = record.run(target, gradient, retain_graph=retain_graph)
    for v in rec.values:
        if v.tensor is not None and id(v.tensor) in unrounded:
            v.unrounded = unrounded[id(v.tensor)]
    rep = Explanation(rec, digits, round, grad_decimals if round is not None else None, title,
                      expand)
    if verify:
        from .verify import verify_record
        verify_record(rec)
        rep.verified = True
    return rep


def _check_args(loss, round, digits):
    from ..errors import ChainruleError
    from ..tensor import Tensor
    if not isinstance(loss, Tensor):
        raise ChainruleError(f"explain: expected the loss Tensor, got {type(loss).__name__}; "
                             "pass the tensor you would call .backward() on.")
    for name, value, low in (("round", round, 0), ("digits", digits, 1)):
        if value is not None and (not isinstance(value, numbers.Integral)
                                  or isinstance(value, bool) or value < low):
            raise ChainruleError(f"explain: {name}={value!r} must be an integer ≥ {low} "
                                 f"(e.g. round=2 for the seeds' two decimals).")


class Explanation:
    """A recorded backward pass. `str()` is the text derivation; `.markdown()`, `.latex()`,
    `.graph()`, `.step(lr)`, `.flow()` give the other views. In Jupyter it displays itself.

    >>> import chainrule as cr
    >>> w = cr.tensor(0.3, dtype=cr.float64, requires_grad=True, name="w")
    >>> y = (w * 2.0).sigmoid()
    >>> y.name = "y"
    >>> rep = cr.explain(y, round=2)          # textbook mode: σ(0.6) is written 0.65
    >>> rep.value("y"), rep.written_grad("w")
    (0.65, 0.455)
    >>> print(rep.step(lr=0.1))
    Gradient descent with learning rate η = 0.1: new value = old value − η × gradient.
    w(1) = w(0) − η · ∂y/∂w = 0.3 − 0.1 × 0.455 = 0.2545
    >>> rep.graph(highlight="w").dot.splitlines()[0]
    'digraph chainrule {'
    >>> rep.flow().kind
    'healthy'
    """

    def __init__(self, rec, digits=None, rounding=None, grad_decimals=None, title=None,
                 expand=False):
        from .layers import find_layers
        self.rec = rec
        if digits is None:
            digits = fmt.significant_digits(rec.root.value.dtype)
        self.layers = find_layers(rec)
        names = {}
        for k, layer in enumerate(self.layers, 1):
            names[layer.z.index] = f"z{k}"
            if layer.a is not None:
                names[layer.a.index] = f"a{k}"
        self.d = Derivation(rec, digits, grad_decimals, names, expand)
        self.d.rounding = rounding
        self.d.grad_decimals = grad_decimals
        self.title = title
        self.verified = False
        self.updates = []

    # ---- data ----
    @property
    def loss(self):
        """The loss value (a float for scalar losses)."""
        v = self.rec.root.value
        return float(v.reshape(())) if v.size == 1 else v

    def value(self, name):
        """The forward value of the tensor called `name` (as the derivation computed it): a
        float for a scalar, else an array."""
        return _plain(self._find(name).value)

    def grad(self, name):
        """∂L/∂(name) as the backward pass computed it (None if it does not reach it)."""
        return _plain(self._find(name).grad)

    def written_grad(self, name):
        """∂L/∂(name) as the derivation writes it (rounded in textbook mode)."""
        g = self._find(name).grad
        return None if g is None else _plain(self.d.gvalue(g))

    def _find(self, name):
        for v in self.rec.values:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.rec.values if v.name)
        raise KeyError(f"explain: no value named {name!r}; the graph has: {known}")

    # ---- actions ----
    def step(self, lr=None, optimizer=None):
        """Take one optimisation step and add it to the derivation: gradient descent with
        learning rate `lr` (p ← p − lr·∂L/∂p, using the gradients as written), or
        `optimizer.step()` (which uses `.grad`, so in textbook mode prefer `lr=` to continue
        with the rounded gradients as a hand calculation does). Returns the Update (also shown
        by `str(self)`)."""
        from . import update
        if (lr is None) == (optimizer is None):
            from ..errors import ChainruleError
            raise ChainruleError("Explanation.step: pass exactly one of lr= (plain gradient "
                                 "descent) or optimizer= (e.g. cr.optim.SGD(params, lr=0.5)).")
        k = len(self.updates)
        upd = (update.sgd_step(self.d, float(lr), k) if optimizer is None
               else update.optimizer_step(self.d, optimizer, k))
        self.updates.append(upd)
        return upd

    def flow(self):
        """Gradient-flow diagnosis: per-layer gradient norms, saturated and dead units, and a
        verdict on vanishing or exploding gradients."""
        from .flow import diagnose
        return diagnose(self)

    def graph(self, highlight=None):
        """The computational graph as a Graph (`.dot` text; `.save('g.svg')` with graphviz),
        values and gradients on the nodes, paths to parameter `highlight` in red."""
        from .graph import Graph
        return Graph(self, highlight)

    # ---- output ----
    def blocks(self):
        d = self.d
        title = self.title or f"Backward pass of {self.rec.root.name}"
        out = sections.header(d, title)
        out += sections.forward(d)
        out += sections.local_table(d, self.verified)
        out += sections.chains(d)
        if self.layers:
            from .layers import layer_blocks
            out += layer_blocks(self)
        if any(not p.scalar for p in self.rec.params()):
            out += sections.gradients(d)
        for upd in self.updates:
            out += sections.update(d, upd)
        return out

    def text(self):
        return render.text(self.blocks())

    def markdown(self):
        return render.markdown(self.blocks())

    def latex(self):
        return render.latex(self.blocks())

    def chain_text(self):
        """Only the chain-rule lines, as text."""
        return render.text([b for b in sections.chains(self.d) if b[0] != "heading"])

    def render(self, format="text"):
        """`format`: 'text', 'markdown' or 'latex'."""
        try:
            return {"text": self.text, "markdown": self.markdown, "latex": self.latex}[format]()
        except KeyError:
            from ..errors import ChainruleError
            raise ChainruleError(f"Explanation.render: unknown format {format!r}; use 'text', "
                                 "'markdown' or 'latex'.") from None

    def __str__(self):
        return self.text()

    def __repr__(self):
        return f"<Explanation of {self.rec.root.name} = {self.d.show(self.rec.root.value)}>"

    def _repr_markdown_(self):
        return self.markdown()

    def _repr_html_(self):
        return render.html_page(self.blocks())


def _plain(a):
    if a is None:
        return None
    return float(a.reshape(())) if a.size == 1 else a
