"""The five seed documents as runnable examples (`chainrule explain --example seed-004`).

Each builder writes its network the way a user would (float64 tensors with `name=`, or
`nn` layers), calls `cr.explain`, and returns a `SeedExample`: a list of parts, each an
Explanation or a few extra blocks (the seeds' own comparisons). The numbers are the seeds':
seed 004 with `round=2` prints exactly the figures of its hand calculation.
"""
from . import core, render

SEEDS = {}
_OPTIONS = {"full": False}   # set by build() for the explanations it makes


def explain(loss, **kwargs):
    return core.explain(loss, full=_OPTIONS["full"], **kwargs)


def seed(name, title):
    def register(fn):
        fn.title = title
        SEEDS[name] = fn
        return fn
    return register


class SeedExample:
    """A titled sequence of parts: (heading, Explanation | blocks)."""

    def __init__(self, name, title, parts):
        self.name, self.title, self.parts = name, title, parts

    def blocks(self):
        out = []
        for heading, part in self.parts:
            blocks = part.blocks() if hasattr(part, "blocks") else list(part)
            if heading:
                rest = blocks[1:] if blocks and blocks[0][0] == "title" else blocks
                blocks = [("title", heading)] + rest
            out += blocks
        return out

    def render(self, format="text", standalone=False):
        blocks = [("chapter", f"{self.name}: {self.title}")] + self.blocks()
        fn = {"text": render.text, "markdown": render.markdown, "latex": render.latex}
        if format not in fn:
            from ..errors import ChainruleError
            raise ChainruleError(f"unknown format {format!r}; use text, markdown or latex")
        if format == "latex":
            return render.latex(blocks, standalone=standalone)
        return fn[format](blocks)

    def explanations(self):
        return [p for _, p in self.parts if hasattr(p, "blocks")]

    def __str__(self):
        return self.render("text")


def _cr():
    import chainrule as cr
    return cr


def _t(value, name=None, grad=False):
    cr = _cr()
    return cr.tensor(value, dtype=cr.float64, requires_grad=grad, name=name)


def _named(t, name):
    t.name = name
    return t


# ---------------------------------------------------------------- seed 001
@seed("seed-001", "h(x) = 1/(1 + e^(−wx)) as a computational graph, and three losses")
def seed_001(round=None, verify=False, lr=None):
    """The graph h1 = w·x, h2 = −h1, h3 = exp(h2), h4 = 1 + h3, h5 = 1/h4 at x = 1, w = 0:
    dh/dw = 0.25. The seed's table prints ∂h5/∂h4 = 1/h4²; the correct −1/h4² is shown (and
    is what the seed's product −0.25 × 1 × 1 × (−1) × 1 uses)."""
    w, x = _t(0.0, "w", True), _t(1.0, "x")
    h = 1 / (1 + (-(w * x)).exp())
    parts = [("h(x) = 1/(1 + e^(−wx)) at x = 1, w = 0",
              explain(h, round=round, verify=verify))]
    parts += _three_losses(round, verify)
    return SeedExample("seed-001", seed_001.title, parts)


def _three_losses(round, verify):
    """The seed's losses on a tiny model each: squared error for regression, binary
    cross-entropy after a sigmoid, multi-class cross-entropy after a softmax."""
    w, b = _t(0.5, "w", True), _t(0.1, "b", True)
    yhat1, yhat2 = _named(w * 2.0 + b, "ŷ1"), _named(w * 3.0 + b, "ŷ2")
    mse = _named((yhat1 - 1.0) ** 2 + (yhat2 - 2.0) ** 2, "L")
    parts = [("Loss 1 — regression: L = Σᵢ (ŷ⁽ⁱ⁾ − y⁽ⁱ⁾)², ŷ = w·x + b, samples (2, 1), (3, 2)",
              explain(mse, round=round, verify=verify))]
    w, b = _t(0.8, "w", True), _t(-0.2, "b", True)
    p1 = _named((w * 1.0 + b).sigmoid(), "ŷ1")
    p2 = _named((w * -1.5 + b).sigmoid(), "ŷ2")
    bce = _named(-(1.0 * p1.log() + (1 - 0.0) * (1 - p2).log()) * 0.5, "L")
    parts.append(("Loss 2 — binary: L = −1/m Σᵢ [y ln ŷ + (1 − y) ln(1 − ŷ)], ŷ = σ(w·x + b), "
                  "samples (1, y=1), (−1.5, y=0)", explain(bce, round=round, verify=verify)))
    W = _t([[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]], "W", True)
    xs = _t([[1.0, 2.0], [0.5, -1.0]], "X")
    Y = _t([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], "Y")
    z = _named(xs @ W.T, "z")
    e = z.exp()
    p = _named(e / e.sum(axis=1, keepdims=True), "ŷ")
    ce = _named(-(Y * p.log()).sum() * 0.5, "L")
    parts.append(("Loss 3 — multi-class: L = −1/m Σᵢ Σⱼ Yⱼ⁽ⁱ⁾ ln ŷⱼ⁽ⁱ⁾, ŷ = softmax(X Wᵀ)",
                  explain(ce, round=round, verify=verify)))
    return parts


# ---------------------------------------------------------------- seed 004
def _net_111():
    x, y = _t(1.0, "x"), _t(0.8, "y")
    w_h, b_h = _t(0.2, "w_h", True), _t(0.1, "b_h", True)
    w_o, b_o = _t(0.3, "w_o", True), _t(0.2, "b_o", True)
    z_h = _named(w_h * x + b_h, "z_h")
    y_h = _named(z_h.sigmoid(), "y_h")
    z_o = _named(w_o * y_h + b_o, "z_o")
    y_o = _named(z_o.sigmoid(), "y_o")
    loss = _named(0.5 * (y - y_o) ** 2, "Loss")
    return loss, (w_h, b_h, w_o, b_o)


@seed("seed-004", "back-propagation in a 1-1-1 network, one update step, several hidden "
                  "neurons")
def seed_004(round=None, verify=False, lr=0.5):
    """x = 1, y = 0.8, w_h = 0.2, b_h = 0.1, w_o = 0.3, b_o = 0.2, Loss = ½(y − y_o)², one step
    with η = 0.5. With round=2: y_h = 0.57, y_o = 0.59, Loss = 0.02205, ∂Loss/∂w_o =
    −0.21 × 0.2419 × 0.57 = −0.02895543, w_o(1) = 0.314477715, as the seed."""
    loss, _ = _net_111()
    rep = explain(loss, round=round, verify=verify)
    if lr is not None:
        rep.step(lr)
    parts = [("1-1-1 network" + (f" (textbook rounding to {round} decimals)" if round else ""),
              rep)]
    parts += _several_hidden(verify)
    return SeedExample("seed-004", seed_004.title, parts)


def _several_hidden(verify):
    """Seed 004's network x → C, D → E, F → G, H: its weight-share split of the error
    (LossE = w_eg/(w_eg + w_fg)·LossG + w_eh/(w_eh + w_fh)·LossH, and on to C, D) next to the
    true gradient."""
    cr = _cr()
    from .. import nn
    f = cr.float64
    cd, ef, gh = (nn.Linear(2, 2, dtype=f) for _ in range(3))
    with cr.no_grad():
        for layer, w, b in ((cd, [[0.4, 0.1], [0.3, 0.7]], [0.0, 0.1]),
                            (ef, [[0.5, 0.3], [0.2, 0.6]], [0.1, -0.1]),    # rows E, F; cols C, D
                            (gh, [[0.2, 0.3], [0.6, 0.4]], [0.0, 0.1])):    # rows G, H; cols E, F
            layer.weight.copy_(_t(w))
            layer.bias.copy_(_t(b))
    for layer, tag in ((cd, "CD"), (ef, "EF"), (gh, "GH")):
        layer.weight.name, layer.bias.name = f"W_{tag}", f"b_{tag}"
    x, target = _t([1.0, 0.5], "x"), _t([1.0, 0.0], "t")
    y_cd = _named(cd(x).sigmoid(), "y_CD")
    y_ef = _named(ef(y_cd).sigmoid(), "y_EF")
    y_gh = _named(gh(y_ef).sigmoid(), "y_GH")
    loss = _named(((y_gh - target) ** 2).sum() * 0.5, "Loss")
    rep = explain(loss, verify=verify)
    from .layers import error_split
    note = [("para", "Rows of W_EF are neurons E, F and its columns C, D; rows of W_GH are G, H "
                     "and its columns E, F. With w_eg = 0.2 and w_fg = 0.3 the seed's split gives "
                     "E the share w_eg/(w_eg + w_fg) = 0.4 of G's error and F the share 0.6 "
                     "(its LossE = 0.4 LossG, LossF = 0.6 LossG).")]
    return [("Hidden layers with several neurons (seed 004: x → C, D → E, F → G, H)", rep),
            (None, note + error_split(rep))]


# ---------------------------------------------------------------- seed 003
@seed("seed-003", "2-3-2 sigmoid network without biases: MSE, matrix form, E = Wᵀ E")
def seed_003(round=None, verify=False, lr=0.5):
    """X (2) → H = W_X X → Y = σ(H) (3) → R = W_Y Y → O = σ(R) (2), E = ½ Σ (T − O)²; the
    seed's error propagation E = Wᵀ E beside the true δ recursion, then one SGD step."""
    cr = _cr()
    from .. import nn
    net = nn.Sequential(nn.Linear(2, 3, bias=False, dtype=cr.float64), nn.Sigmoid(),
                        nn.Linear(3, 2, bias=False, dtype=cr.float64), nn.Sigmoid())
    with cr.no_grad():
        net[0].weight.copy_(_t([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]))
        net[2].weight.copy_(_t([[0.7, 0.9, 0.2], [0.8, 0.1, 0.4]]))
    net[0].weight.name, net[2].weight.name = "W_X", "W_Y"
    x, t = _t([0.5, 1.0], "X"), _t([1.0, 0.0], "T")
    o = net(x)
    loss = _named(((t - o) ** 2).sum() * 0.5, "E")
    rep = explain(loss, round=round, verify=verify)
    if lr is not None:
        rep.step(lr)
    from .layers import error_split
    return SeedExample("seed-003", seed_003.title,
                       [("2-3-2 network, E = ½ Σ (T − O)²", rep), (None, error_split(rep))])


# ---------------------------------------------------------------- seed 000
@seed("seed-000", "the delta rule for a sigmoid MLP")
def seed_000(round=None, verify=False, lr=None):
    """A 2-2-1 sigmoid network with biases and L = ½(t − o)²: output δ_v = ∂L/∂o_v · o_v(1 −
    o_v), hidden δ_q = o_q(1 − o_q) Σ_k δ_k w_qk, ∂L/∂w_pq = δ_q o_p."""
    cr = _cr()
    from .. import nn
    net = nn.Sequential(nn.Linear(2, 2, dtype=cr.float64), nn.Sigmoid(),
                        nn.Linear(2, 1, dtype=cr.float64), nn.Sigmoid())
    with cr.no_grad():
        net[0].weight.copy_(_t([[0.15, 0.20], [0.25, 0.30]]))
        net[0].bias.copy_(_t([0.35, 0.35]))
        net[2].weight.copy_(_t([[0.40, 0.45]]))
        net[2].bias.copy_(_t([0.60]))
    x, t = _t([0.05, 0.10], "x"), _t([0.01], "t")
    o = net(x)
    loss = _named((0.5 * (t - o) ** 2).sum(), "L")
    rep = explain(loss, round=round, verify=verify)
    if lr is not None:
        rep.step(lr)
    note = [("para", "Sign convention: the seed defines δ_v = (t_v − o_v)·o_v(1 − o_v), so "
                     "∂L/∂w = −δ_v·o_u; chainrule writes δ = ∂L/∂z = −(t − o)·o(1 − o), so "
                     "∂L/∂W = δ·inputᵀ. Same numbers, opposite sign of δ.")]
    return SeedExample("seed-000", seed_000.title,
                       [("2-2-1 sigmoid network, L = ½(t − o)²", rep), (None, note)])


# ---------------------------------------------------------------- seed 002
@seed("seed-002", "a loss summed over samples, and a value reached along two paths")
def seed_002(round=None, verify=False, lr=None):
    """L = Σₙ Cⁿ: each sample's gradient ∂Cⁿ/∂w and their sum; then the seed's network
    z = x₁w₁ + x₂w₂ + b, a = σ(z), z' = a·w₃, z'' = a·w₄, where ∂C/∂z =
    σ'(z)[w₃ ∂C/∂z' + w₄ ∂C/∂z''] is a sum over two paths."""
    w1, w2, b = _t(0.5, "w1", True), _t(-0.3, "w2", True), _t(0.1, "b", True)
    samples = [((1.0, 2.0), 1.0), ((0.5, -1.0), 0.0)]
    losses = []
    for n, ((x1, x2), y) in enumerate(samples, 1):
        a = (w1 * x1 + w2 * x2 + b).sigmoid()
        losses.append(_named(0.5 * (a - y) ** 2, f"C{n}"))
    total = _named(losses[0] + losses[1], "L")
    rep1 = explain(total, round=round, verify=verify)
    if lr is not None:
        rep1.step(lr)
    w1, w2, b = _t(0.5, "w1", True), _t(-0.2, "w2", True), _t(0.1, "b", True)
    w3, w4 = _t(0.8, "w3", True), _t(-0.6, "w4", True)
    z = _named(w1 * 1.0 + w2 * 2.0 + b, "z")
    a = _named(z.sigmoid(), "a")
    z1, z2 = _named(a * w3, "z'"), _named(a * w4, "z''")
    c = _named(0.5 * (z1 - 1.0) ** 2 + 0.5 * (z2 - 0.0) ** 2, "C")
    rep2 = explain(c, round=round, verify=verify)
    return SeedExample("seed-002", seed_002.title, [
        ("L = C¹ + C² over two samples, Cⁿ = ½(σ(x₁w₁ + x₂w₂ + b) − yⁿ)²", rep1),
        ("One value, two paths: z' = a·w₃ and z'' = a·w₄ both use a = σ(z)", rep2)])


@seed("static-vs-dynamic", "seed 001's closing point: a static graph traced once and replayed, "
                           "a dynamic graph rebuilt by every call")
def static_vs_dynamic(round=None, verify=False, lr=None):
    """h(x) = 1/(1 + e^(−wx)) recorded per call (dynamic) and traced once by `cr.compile`
    (static), with the captured program, the time per call of each, and a branch on a value
    that only the dynamic graph can follow (chainrule.static.example)."""
    from ..static.example import build as build_example
    return build_example(SeedExample, static_vs_dynamic.title)


def build(name, full=False, **kwargs):
    """The SeedExample called `name` ('seed-000' … 'seed-004'); `full` writes every entry of
    every tensor."""
    if name not in SEEDS:
        from ..errors import ChainruleError
        raise ChainruleError(f"unknown example {name!r}; choose one of {', '.join(sorted(SEEDS))}")
    _OPTIONS["full"] = bool(full)
    try:
        return SEEDS[name](**kwargs)
    finally:
        _OPTIONS["full"] = False
