"""`explain(loss)`: run the real backward pass and keep a derivation of it."""
import json
import numbers

from . import fmt, record, render, sections
from .derive import Derivation


def explain(loss, *, round=None, grad_decimals=None, verify=False, digits=None,
            expand=False, gradient=None, retain_graph=False, title=None, full=False):
    """Run `loss`'s backward pass (filling `.grad` exactly as `loss.backward()` does) and
    return an Explanation: forward values, local derivatives, chain-rule products per
    parameter, sums over paths, the layer view for networks, and (after `.step(lr)` or
    `.step(optimizer=...)`) the update.

    round:          textbook mode. Replays the forward pass rounding every function value
                    (σ, exp, log, division, …) to `round` decimals before it is used, like a
                    hand calculation, and every local derivative that is a function value too
                    (cos x of sin, 1/x of ln, 1/(2√x) of √); the backward pass then runs on
                    that graph. Gradients are written to `grad_decimals` decimals (default
                    4 × round: a product of two factors y(1 − y) with 2·round decimals each)
                    and `.step` uses them as written. Use float64 tensors to see every digit.
    verify:         check every local derivative against a float64 finite difference (✓/✗).
    digits:         significant digits shown (default 10 for float64, 7 for float32).
    full:           write every entry of every tensor (by default tensors of more than 12
                    entries are summarised by shape, mean, range and first entries).
    gradient:       for a non-scalar output, the vector of the vector-Jacobian product (as
                    in `loss.backward(gradient)`).
    expand:         every primitive is a step of the derivation (unnamed ones become h1,
                    h2, …), even when some values are named; by default unnamed primitives
                    between named values are folded into one factor, and textbook compounds
                    (a squared error, a cross-entropy, a softmax, a convolution) are one step.
                    When only the output is named (or nothing), every primitive is a step
                    anyway, compounds aside.

    The result renders as text (`str`), Markdown (`.markdown()`), LaTeX (`.latex()`, a
    complete document with `standalone=True`), a graph picture (`.graph()`), a worksheet with
    blanks (`.exercise(hide="chain")`) and plain data (`.to_dict()`, `.to_json()`; schema in
    docs/explain_schema.md).

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
    unrounded, traces = {}, None
    target = loss
    if round is not None:
        target, unrounded, traces = record.replay_rounded(loss, int(round))
        if grad_decimals is None:
            grad_decimals = 4 * int(round)
    rec = record.run(target, gradient, retain_graph=retain_graph, traces=traces)
    for v in rec.values:
        if v.tensor is not None and id(v.tensor) in unrounded:
            v.unrounded = unrounded[id(v.tensor)]
    rep = Explanation(rec, digits, round, grad_decimals if round is not None else None, title,
                      expand, full)
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
    `.graph()`, `.html()` (the interactive explorer), `.step(lr)`, `.flow()`, `.exercise()`
    and `.to_dict()` give the other views. In Jupyter it displays itself as the explorer.

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
    >>> rep.to_dict()["chains"][0]["line"]["text"]
    '∂y/∂w = ∂y/∂h1 · ∂h1/∂w = 0.2275 × 2 = 0.455'
    """

    def __init__(self, rec, digits=None, rounding=None, grad_decimals=None, title=None,
                 expand=False, full=False):
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
        self.d = Derivation(rec, digits, grad_decimals, names, expand, full, rounding)
        self.title = title
        self.verified = False
        self.updates = []
        self._model = None

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

    def to_dict(self):
        """The derivation as plain data (dicts, lists, strings, numbers; nan and inf as
        strings), versioned: `schema` 'chainrule.explain', `version` 1. Every view —
        text, Markdown, LaTeX, the graph, worksheets — is rendered from it. The fields are
        described in docs/explain_schema.md.

        >>> import chainrule as cr
        >>> w = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="w")
        >>> m = cr.explain((w * 3.0) ** 2).to_dict()
        >>> m["version"], m["chains"][0]["grad"]
        (1, 9.0)
        """
        key = (len(self.updates), self.verified)
        if self._model is None or self._model[0] != key:
            from .model import build
            self._model = (key, build(self))
        return self._model[1]

    def to_json(self, indent=None):
        """`to_dict()` as JSON text (UTF-8 characters kept).

        >>> import chainrule as cr
        >>> w = cr.tensor(2.0, requires_grad=True, name="w")
        >>> cr.explain(w * w).to_json()[:40]
        '{"schema": "chainrule.explain", "version'
        """
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, allow_nan=False)

    # ---- actions ----
    def step(self, lr=None, optimizer=None):
        """Take one optimisation step and add it to the derivation: gradient descent with
        learning rate `lr` (p ← p − lr·∂L/∂p, using the gradients as written), or
        `optimizer.step()` written out with the optimizer's state (momentum's buffer, Adam's
        m, v and their bias corrections). `optimizer` uses `.grad`, so in textbook mode prefer
        `lr=` to continue with the rounded gradients as a hand calculation does. Returns the
        Update (also shown by `str(self)`)."""
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

    def html(self, path=None):
        """The backward-pass explorer: one self-contained HTML page (no network request of
        any kind; KaTeX and its fonts inlined) that draws the graph, steps through the
        forward pass and the backward pass edge by edge in the engine's order, and shows
        each parameter's chain-rule product, the update, the layer view and worksheets
        (docs/explorer.md). Returns the page's text, or writes it to `path` and returns
        the path.

        >>> import chainrule as cr
        >>> w = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="w")
        >>> page = cr.explain((w * 3.0) ** 2).html()
        >>> page.startswith("<!DOCTYPE html>"), len(page) < 2_000_000
        (True, True)
        """
        from . import explorer
        text = explorer.page([(None, self)])
        return text if path is None else explorer.write(path, text)

    def exercise(self, hide="chain", sig=3):
        """A worksheet: the derivation with numbered blanks where the hidden quantities' numbers
        were. `hide`: 'forward', 'local', 'chain', 'update', 'all', or a list of quantity
        labels such as ['∂L/∂w_o']. `.answers` maps each blank's label to its value and
        `.check({label: value})` marks answers (accepted to `sig` significant figures, or
        when they round to the key at the announced rounding).

        >>> import chainrule as cr
        >>> w = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="w")
        >>> y = (w * 2.0) ** 2
        >>> y.name = "y"
        >>> ws = cr.explain(y).exercise(hide="chain")
        >>> ws.answers
        {'∂y/∂w': 4.0}
        >>> ws.check({"∂y/∂w": 4}).correct
        1
        """
        from .worksheet import Worksheet
        return Worksheet(self, hide, sig)

    # ---- output ----
    def blocks(self):
        return sections.blocks(self.to_dict())

    def text(self):
        return render.text(self.blocks())

    def markdown(self):
        return render.markdown(self.blocks())

    def latex(self, standalone=False):
        """The derivation in LaTeX (ASCII only, for pdflatex): a fragment for an amsmath
        document, or with `standalone=True` a complete document."""
        return render.latex(self.blocks(), standalone=standalone)

    def chain_text(self):
        """Only the chain-rule lines, as text."""
        return render.text([b for b in sections.chains(self.to_dict()) if b[0] != "heading"])

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
        from .explorer import notebook_html
        return notebook_html(self)


def _plain(a):
    if a is None:
        return None
    return float(a.reshape(())) if a.size == 1 else a
