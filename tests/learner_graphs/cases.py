"""The learner graphs. Each function builds a model the way a learner writes it, explains it,
and computes every expected number independently in NumPy float64 (hand-written forward and
backward passes, no chainrule). Returns a Case: the Explanation, {quantity label: NumPy
value}, and phrases the text must contain (the textbook forms)."""
import numpy as np

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn, optim

CASES = {}


class Case:
    def __init__(self, rep, expected, phrases=(), grads=None):
        self.rep, self.expected, self.phrases = rep, expected, list(phrases)
        self.grads = grads or {}       # parameter tensor -> NumPy gradient


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def f64(value, name=None, grad=False):
    return cr.tensor(value, dtype=cr.float64, requires_grad=grad, name=name)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# ---------------------------------------------------------------- regression
@case
def linear_regression_vectors():
    """The issue's first model: 0-d w, b broadcast over vectors, only L named (float32)."""
    w = cr.tensor(0.5, requires_grad=True, name="w")
    b = cr.tensor(0.0, requires_grad=True, name="b")
    x = cr.tensor([1.0, 2.0, 3.0, 4.0], name="x")
    y = cr.tensor([2.0, 4.0, 6.0, 8.0], name="y")
    loss = ((w * x + b - y) ** 2).mean()
    loss.name = "L"
    rep = cr.explain(loss)
    X, Y = np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 6, 8])
    h1 = 0.5 * X
    h2 = h1 + 0.0
    dh2 = 2 * (h2 - Y) / 4
    return Case(rep, {"h1": h1, "h2": h2, "L": np.mean((h2 - Y) ** 2), "∂L/∂h2": dh2,
                      "∂h1/∂w": X, "∂L/∂w": np.sum(dh2 * X), "∂L/∂b": np.sum(dh2)},
                ["L = (1/N) Σ (h2 - y)²", "∂L/∂h2 = 2(h2 - y)/N", "(target, shape (4,))",
                 "∂L/∂w = ∂L/∂h2 · ∂h2/∂h1 · ∂h1/∂w = Σ ("],
                {w: np.sum(dh2 * X), b: np.sum(dh2)})


@case
def logistic_regression():
    """σ(X @ w + b) with binary cross-entropy on a batch of four."""
    Xv = np.array([[0.5, 1.0], [-1.0, 0.3], [2.0, -0.5], [0.1, 0.1]])
    yv = np.array([1.0, 0.0, 1.0, 0.0])
    X, y = f64(Xv, "X"), f64(yv, "y")
    w, b = f64([0.3, -0.2], "w", True), f64(0.1, "b", True)
    loss = F.binary_cross_entropy((X @ w + b).sigmoid(), y)
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    h1 = Xv @ np.array([0.3, -0.2])
    h2 = h1 + 0.1
    p = sigmoid(h2)
    n = 4
    L = -np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p))
    dp = (p - yv) / (p * (1 - p) * n)
    dz = (p - yv) / n
    return Case(rep, {"h1": h1, "h2": h2, "h3": p, "L": L, "∂L/∂h3": dp,
                      "∂h3/∂h2": p * (1 - p), "∂L/∂h2": dz, "∂L/∂w": Xv.T @ dz,
                      "∂L/∂b": dz.sum()},
                ["L = -(1/N) Σ [y·ln h3 + (1 - y)·ln(1 - h3)]",
                 "σ and binary cross-entropy together: ∂L/∂h2 = (h3 − y)/N"],
                {w: Xv.T @ dz, b: dz.sum()})


# ---------------------------------------------------------------- networks
def _set(layer, w, b):
    with cr.no_grad():
        layer.weight.copy_(f64(w))
        layer.bias.copy_(f64(b))


@case
def mlp_222_sigmoid_mse():
    """A 2-2-2 sigmoid network (nn.Linear, one sample) with F.mse_loss."""
    W1, b1 = np.array([[0.15, 0.2], [0.25, 0.3]]), np.array([0.35, 0.35])
    W2, b2 = np.array([[0.4, 0.45], [0.5, 0.55]]), np.array([0.6, 0.6])
    net = nn.Sequential(nn.Linear(2, 2, dtype=cr.float64), nn.Sigmoid(),
                        nn.Linear(2, 2, dtype=cr.float64), nn.Sigmoid())
    _set(net[0], W1, b1)
    _set(net[2], W2, b2)
    xv, tv = np.array([0.05, 0.1]), np.array([0.01, 0.99])
    loss = F.mse_loss(net(f64(xv, "x")), f64(tv, "t"))
    rep = cr.explain(loss, verify=True)
    a1 = sigmoid(W1 @ xv + b1)
    a2 = sigmoid(W2 @ a1 + b2)
    da2 = (a2 - tv)                       # mean over 2 entries = ½ Σ: derivative o − t
    d2 = da2 * a2 * (1 - a2)
    d1 = a1 * (1 - a1) * (W2.T @ d2)
    return Case(rep, {"a1": a1, "a2": a2, "L": np.mean((a2 - tv) ** 2), "∂L/∂a2": da2,
                      "δ2": d2, "δ1": d1, "∂L/∂2.weight": np.outer(d2, a1),
                      "∂L/∂0.weight": np.outer(d1, xv), "∂L/∂0.bias": d1, "∂L/∂2.bias": d2},
                ["L = ½ Σ (a2 - t)²", "δ1 = f'(z1) ⊙ (W2ᵀ δ2)", "∂L/∂2.weight = δ2 · a1ᵀ"],
                {net[0].weight: np.outer(d1, xv), net[2].bias: d2})


@case
def batch_mlp_x_at_w():
    """A batch through X @ W layers (row layout): ∂L/∂W = Xᵀ δ, δ_prev = f'(Z) ⊙ (δ Wᵀ)."""
    rng = np.random.default_rng(3)
    Xv, Tv = rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
    W1v, b1v = rng.standard_normal((3, 2)) * 0.5, np.array([0.1, -0.1])
    W2v, b2v = rng.standard_normal((2, 1)) * 0.5, np.array([0.05])
    W1, b1, W2, b2 = f64(W1v, "W1", True), f64(b1v, "b1", True), f64(W2v, "W2", True), \
        f64(b2v, "b2", True)
    out = (f64(Xv, "X") @ W1 + b1).tanh() @ W2 + b2
    loss = F.mse_loss(out, f64(Tv, "T"))
    rep = cr.explain(loss)
    z1 = Xv @ W1v + b1v
    a1 = np.tanh(z1)
    z2 = a1 @ W2v + b2v
    d2 = 2 * (z2 - Tv) / Tv.size
    d1 = (1 - a1 ** 2) * (d2 @ W2v.T)
    return Case(rep, {"z1": z1, "a1": a1, "z2": z2, "δ2": d2, "δ1": d1, "∂L/∂W2": a1.T @ d2,
                      "∂L/∂W1": Xv.T @ d1, "∂L/∂b1": d1.sum(0), "∂L/∂b2": d2.sum(0),
                      "∂L/∂z2": d2},
                ["L = (1/N) Σ (z2 - T)²", "∂L/∂W2 = a1ᵀ δ2", "∂L/∂W1 = Xᵀ δ1",
                 "δ1 = f'(z1) ⊙ (δ2 W2ᵀ)", "∂L/∂b1 = Σ_rows δ1"],
                {W1: Xv.T @ d1, b2: d2.sum(0)})


@case
def broadcasting_bias_relu():
    """X @ W + b with b (2,) broadcast over the rows, ReLU, a sum of squares."""
    Xv = np.array([[1.0, -2.0], [0.5, 0.5], [-1.0, 3.0]])
    Wv, bv = np.array([[0.2, -0.3], [0.4, 0.1]]), np.array([0.1, 0.2])
    W, b = f64(Wv, "W", True), f64(bv, "b", True)
    loss = ((f64(Xv, "X") @ W + b).relu() ** 2).sum()
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    z = Xv @ Wv + bv
    a = np.maximum(z, 0)
    d = 2 * a * (z > 0)
    return Case(rep, {"z1": z, "a1": a, "∂L/∂a1": 2 * a, "δ1": d, "∂L/∂W": Xv.T @ d,
                      "∂L/∂b": d.sum(0)},
                ["∂L/∂b = Σ_rows δ1", "∂L/∂W = Xᵀ δ1"], {W: Xv.T @ d, b: d.sum(0)})


@case
def column_vector_w_at_x():
    """Column-vector style z = W @ x + b, σ, ½ Σ (a − t)²: ∂L/∂W = δ xᵀ."""
    Wv, bv = np.array([[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]]), np.array([0.0, 0.1])
    xv, tv = np.array([1.0, 0.5, -1.0]), np.array([1.0, 0.0])
    W, b = f64(Wv, "W", True), f64(bv, "b", True)
    a = (W @ f64(xv, "x") + b).sigmoid()
    loss = ((a - f64(tv, "t")) ** 2).sum() * 0.5
    loss.name = "E"
    rep = cr.explain(loss, verify=True)
    av = sigmoid(Wv @ xv + bv)
    d = (av - tv) * av * (1 - av)
    return Case(rep, {"a1": av, "δ1": d, "∂E/∂W": np.outer(d, xv), "∂E/∂b": d,
                      "∂E/∂a1": av - tv},
                ["E = ½ Σ (a1 - t)²", "∂E/∂W = δ1 · xᵀ"], {W: np.outer(d, xv)})


@case
def softmax_classifier():
    """Scores X @ W + b, F.cross_entropy with integer labels: p, one-hot Y and (p − Y)/N."""
    Xv = np.array([[1.0, 2.0], [0.5, -1.0], [-0.3, 0.8]])
    Wv, bv = np.array([[0.2, -0.1, 0.4], [0.3, 0.1, -0.5]]), np.array([0.0, 0.1, -0.1])
    labels = np.array([0, 2, 1])
    W, b = f64(Wv, "W", True), f64(bv, "b", True)
    z = f64(Xv, "X") @ W + b
    z.name = "z"
    loss = F.cross_entropy(z, cr.tensor(labels))
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    zv = Xv @ Wv + bv
    e = np.exp(zv - zv.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    Y = np.eye(3)[labels]
    d = (p - Y) / 3
    return Case(rep, {"z": zv, "p": p, "Y": Y, "L": -np.mean(np.log(p[range(3), labels])),
                      "∂L/∂z": d, "δ1": d, "∂L/∂W": Xv.T @ d, "∂L/∂b": d.sum(0)},
                ["labels = [0, 2, 1]    (labels, shape (3,))", "Y = onehot(labels) = ",
                 "p = softmax(z) = ", "L = -(1/N) Σ Y ⊙ ln softmax(z)", "∂L/∂z = (p - Y)/N = "],
                {W: Xv.T @ d})


@case
def softmax_soft_targets():
    """F.cross_entropy against probability rows."""
    zv = np.array([[2.0, 1.0, 0.1], [0.5, 0.5, 1.5]])
    Tv = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    z = f64(zv, "z", True)
    loss = F.cross_entropy(z, f64(Tv, "T"))
    rep = cr.explain(loss, verify=True)
    e = np.exp(zv - zv.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    d = (p - Tv) / 2
    return Case(rep, {"p": p, "L": -np.mean((Tv * np.log(p)).sum(1)), "∂L/∂z": d},
                ["L = -(1/N) Σ T ⊙ ln softmax(z)", "(target, shape (2, 3))"], {z: d})


@case
def manual_softmax_cross_entropy():
    """A hand-written softmax (shifted by the row max) and cross-entropy with one-hot Y."""
    Xv = np.array([[1.0, 2.0], [0.5, -1.0]])
    Wv = np.array([[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]])
    Yv = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    W = f64(Wv, "W", True)
    z = f64(Xv, "X") @ W.T
    z.name = "z"
    e = (z - z.max(axis=1, keepdims=True)).exp()
    p = e / e.sum(axis=1, keepdims=True)
    p.name = "p"
    loss = -(f64(Yv, "Y") * p.log()).sum() / 2
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    zv = Xv @ Wv.T
    ev = np.exp(zv - zv.max(1, keepdims=True))
    pv = ev / ev.sum(1, keepdims=True)
    d = (pv - Yv) / 2
    return Case(rep, {"z": zv, "p": pv, "L": -np.sum(Yv * np.log(pv)) / 2,
                      "∂L/∂p": -Yv / (2 * pv), "∂L/∂z": d, "∂L/∂W": d.T @ Xv},
                ["p = softmax(z)", "∂p/∂z = pᵢ(δᵢⱼ - pⱼ) = ", "L = -(1/M) Σ Y ⊙ ln p",
                 "softmax and cross-entropy together: ∂L/∂z = (p − Y)/M"],
                {W: d.T @ Xv})


@case
def reused_value_two_paths():
    """Seed 002's case 2 (x = s², y = eˢ, z = x·y + sin x: dz/ds = ∂z/∂x·dx/ds + ∂z/∂y·dy/ds)
    and y used again by u = y²: ∂L/∂y is the sum over its two consumers."""
    s = f64(0.6, "s", True)
    x, y = s ** 2, s.exp()
    x.name, y.name = "x", "y"
    z = x * y + x.sin()
    z.name = "z"
    u = y * y
    u.name = "u"
    loss = z + u
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    sv = 0.6
    xv, yv = sv ** 2, np.exp(sv)
    dz_dx, dz_dy = yv + np.cos(xv), xv
    dL_dy = 1 * dz_dy + 1 * 2 * yv
    dL_dx = dz_dx
    ds = dL_dx * 2 * sv + dL_dy * yv
    return Case(rep, {"x": xv, "y": yv, "z": xv * yv + np.sin(xv), "∂z/∂x": dz_dx,
                      "∂z/∂y": dz_dy, "∂x/∂s": 2 * sv, "∂y/∂s": yv, "∂u/∂y": 2 * yv,
                      "∂L/∂y": dL_dy, "∂L/∂s": ds},
                ["∂L/∂s = ∂L/∂z · ∂z/∂x · ∂x/∂s + ∂L/∂z · ∂z/∂y · ∂y/∂s + ∂L/∂u · ∂u/∂y · ∂y/∂s",
                 "∂L/∂y = ∂L/∂z · ∂z/∂y + ∂L/∂u · ∂u/∂y = ",
                 "y is used by 2 later values"],
                {s: ds})


# ---------------------------------------------------------------- convolution
def _conv(x, k, b):
    n, c, h, w = x.shape
    o, _, kh, kw = k.shape
    out = np.zeros((n, o, h - kh + 1, w - kw + 1))
    for p in range(out.shape[2]):
        for q in range(out.shape[3]):
            out[:, :, p, q] = np.einsum("nchw,ochw->no", x[:, :, p:p + kh, q:q + kw], k) + b
    return out


def _conv_back(x, k, delta):
    gk, gx = np.zeros_like(k), np.zeros_like(x)
    kh, kw = k.shape[2:]
    for p in range(delta.shape[2]):
        for q in range(delta.shape[3]):
            gk += np.einsum("no,nchw->ochw", delta[:, :, p, q], x[:, :, p:p + kh, q:q + kw])
            gx[:, :, p:p + kh, q:q + kw] += np.einsum("no,ochw->nchw", delta[:, :, p, q], k)
    return gk, delta.sum((0, 2, 3)), gx


@case
def conv_two_layers():
    """Two convolutions with ReLU, explained on the image: ∂L/∂K = X ⋆ δ."""
    rng = np.random.default_rng(7)
    xv = rng.standard_normal((1, 1, 5, 5))
    k1, b1 = rng.standard_normal((2, 1, 3, 3)) * 0.5, np.array([0.1, -0.1])
    k2, b2 = rng.standard_normal((1, 2, 2, 2)) * 0.5, np.array([0.05])
    net = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=cr.float64), nn.ReLU(),
                        nn.Conv2d(2, 1, 2, dtype=cr.float64))
    c1, c2 = net[0], net[2]
    _set(c1, k1, b1)
    _set(c2, k2, b2)
    loss = (net(f64(xv, "x")) ** 2).mean()
    loss.name = "L"
    rep = cr.explain(loss, verify=True, full=True)      # every entry of every tensor
    z1 = _conv(xv, k1, b1)
    a1 = np.maximum(z1, 0)
    z2 = _conv(a1, k2, b2)
    d2 = 2 * z2 / z2.size
    gk2, gb2, ga1 = _conv_back(a1, k2, d2)
    d1 = ga1 * (z1 > 0)
    gk1, gb1, _ = _conv_back(xv, k1, d1)
    return Case(rep, {"δ2": d2, "δ1": d1, "∂L/∂0.weight": gk1, "∂L/∂0.bias": gb1,
                      "∂L/∂2.weight": gk2, "∂L/∂2.bias": gb2},
                ["z1 = conv(x, 0.weight) + 0.bias", "∂L/∂0.weight = Σ_n,p,q δ1[n,o,p,q] · "
                 "x[n,c,p+i,q+j]", "δ1 = f'(z1) ⊙ (δ2 ⋆ᵀ W2)"],
                {c1.weight: gk1, c2.bias: gb2})


# ---------------------------------------------------------------- optimizers
@case
def adam_step():
    """One Adam step written out: m, v, their bias corrections and the update."""
    wv, xv = np.array([0.5, -0.3]), np.array([1.0, 2.0])
    w = f64(wv, "w", True)
    loss = ((w * f64(xv, "x") - 1.0) ** 2).sum()
    loss.name = "L"
    rep = cr.explain(loss)
    rep.step(optimizer=optim.Adam([w], lr=0.1))
    g = 2 * (wv * xv - 1) * xv
    m, v = 0.1 * g, 0.001 * g * g
    mh, vh = m / (1 - 0.9), v / (1 - 0.999)
    new = wv - 0.1 * mh / (np.sqrt(vh) + 1e-8)
    return Case(rep, {"∂L/∂w": g, "m_w(1)": m, "v_w(1)": v, "m̂_w": mh, "v̂_w": vh,
                      "w(1)": new},
                ["Adam.step(): the moments m and v, their bias corrections m̂ and v̂",
                 "m_w(1) = β₁·m_w(0) + (1 − β₁)·g", "m̂_w = m_w(1) / (1 − β₁^1)"],
                {})


@case
def sgd_momentum_two_steps():
    """SGD with momentum: the buffer starts at g, then b = μ·b + g."""
    w = f64(0.8, "w", True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)

    def explained():
        loss = (w * 2.0 - 1.0) ** 2
        loss.name = "L"
        return cr.explain(loss)
    first = explained()
    first.step(optimizer=opt)
    w.grad = None
    rep = explained()
    rep.step(optimizer=opt)
    w0 = 0.8
    g0 = 2 * (w0 * 2 - 1) * 2
    b0 = g0
    w1 = w0 - 0.1 * b0
    g1 = 2 * (w1 * 2 - 1) * 2
    b1 = 0.9 * b0 + g1
    return Case(rep, {"∂L/∂w": g1, "b_w(1)": b1, "w(1)": w1 - 0.1 * b1},
                ["b_w(1) = μ·b_w(0) + (1 − τ)·g"], {})


# ---------------------------------------------------------------- textbook rounding
@case
def tanh_chain_round2():
    """tanh with textbook rounding: (tanh(w·x + b) − t)², σ-free, two decimals."""
    w, b = f64(0.8, "w", True), f64(0.1, "b", True)
    loss = ((w * f64(0.5, "x") + b).tanh() - f64(0.3, "t")) ** 2
    loss.name = "L"
    rep = cr.explain(loss, round=2)
    h3 = round(np.tanh(0.5), 2)                   # 0.46
    dL = 2 * (h3 - 0.3)
    dh = 1 - h3 ** 2                              # exact arithmetic on the rounded value
    return Case(rep, {"h1": 0.4, "h2": 0.5, "h3": h3, "L": (h3 - 0.3) ** 2, "∂L/∂h3": dL,
                      "∂h3/∂h2": dh, "∂L/∂w": dL * dh * 0.5, "∂L/∂b": dL * dh},
                ["h3 = tanh(h2) = tanh(0.5) = 0.46    (rounded from 0.4621172)",
                 "L = (h3 - t)²"], {w: dL * dh * 0.5})


@case
def sin_chain_round2():
    """sin with textbook rounding: its local derivative cos(h1) is rounded too."""
    w = f64(0.7, "w", True)
    loss = (w * f64(2.0, "x")).sin() ** 2
    loss.name = "L"
    rep = cr.explain(loss, round=2)
    h2 = round(np.sin(1.4), 2)                    # 0.99
    cos = round(np.cos(1.4), 2)                   # 0.17, as a hand calculation looks it up
    g = 2 * h2 * cos * 2
    return Case(rep, {"h2": h2, "L": h2 ** 2, "∂L/∂h2": 2 * h2, "∂h2/∂h1": cos, "∂L/∂w": g},
                ["∂h2/∂h1 = cos(h1) = cos(1.4) = 0.17"], {w: g})


@case
def log_sqrt_chain_round2():
    """ln and √ with textbook rounding: 1/x and 1/(2√x) are rounded in the backward pass."""
    w = f64(1.7, "w", True)
    loss = (w * 3.0).log().sqrt()
    loss.name = "L"
    rep = cr.explain(loss, round=2)
    h2 = round(np.log(5.1), 2)                    # 1.63
    L = round(np.sqrt(h2), 2)                     # 1.28
    dsqrt = round(1 / (2 * L), 2)                 # 0.39
    dlog = round(1 / 5.1, 2)                      # 0.2
    g = dsqrt * dlog * 3
    return Case(rep, {"h1": 5.1, "h2": h2, "L": L, "∂L/∂h2": dsqrt, "∂h2/∂h1": dlog,
                      "∂L/∂w": g},
                ["∂h2/∂h1 = 1/h1 = 1/5.1 = 0.2", "∂L/∂w = ∂L/∂h2 · ∂h2/∂h1 · ∂h1/∂w = "
                 "0.39 × 0.2 × 3 = 0.234"], {w: g})


# ---------------------------------------------------------------- NaN
NAN_LINE = None


@case
def nan_origin():
    """ln of a negative number: the first non-finite value is named, with its line."""
    global NAN_LINE
    import inspect
    w = f64([0.5, -0.25], "w", True)
    with cr.detect_anomaly(check_nan=False), np.errstate(invalid="ignore"):
        h = w * f64([2.0, 4.0], "x")
        NAN_LINE = inspect.currentframe().f_lineno + 1
        loss = h.log().sum()
    loss.name = "L"
    rep = cr.explain(loss)
    return Case(rep, {"∂h1/∂w": np.array([2.0, 4.0])},
                ["The first non-finite value is made by log (ln(x)) at h2: 1 nan and 0 inf",
                 f"line {NAN_LINE}", "loss = h.log().sum()"], {})


@case
def unnamed_vector_product():
    """Nothing named: every primitive is a step, the output is h-named."""
    w = f64([1.0, -2.0, 0.5], None, True)
    loss = (w * f64([3.0, 1.0, 2.0])).sum()
    rep = cr.explain(loss)
    return Case(rep, {"h1": np.array([3.0, -2.0, 1.0]), "h2": 2.0, "∂h1/∂p1": [3.0, 1, 2],
                      "∂h2/∂p1": np.array([3.0, 1, 2])},
                ["x = [3, 1, 2]    (input, shape (3,))", "h2 = Σ h1"], {w: [3.0, 1, 2]})


@case
def logistic_regression_logits():
    """Logistic regression PyTorch-style: scores X @ w + b and BCE with logits."""
    Xv = np.array([[0.5, 1.0], [-1.0, 0.3], [2.0, -0.5]])
    yv = np.array([1.0, 0.0, 0.0])
    w, b = f64([0.3, -0.2], "w", True), f64(0.1, "b", True)
    z = f64(Xv, "X") @ w + b
    z.name = "z"
    loss = F.binary_cross_entropy_with_logits(z, f64(yv, "y"))
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    zv = Xv @ np.array([0.3, -0.2]) + 0.1
    p = sigmoid(zv)
    L = -np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p))
    dz = (p - yv) / 3
    return Case(rep, {"z": zv, "L": L, "∂L/∂z": dz, "∂L/∂w": Xv.T @ dz, "∂L/∂b": dz.sum(),
                      "t": yv},
                ["L = -(1/N) Σ [t·ln σ(z) + (1 - t)·ln(1 - σ(z))]", "∂L/∂z = (σ(z) - t)/N = "],
                {w: Xv.T @ dz, b: dz.sum()})


@case
def log_softmax_nll():
    """F.log_softmax then F.nll_loss: log_softmax(z), −(1/N) Σ Y ⊙ log p, and (p − Y)/N."""
    zv = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3], [-1.0, 0.0, 1.0]])
    labels = np.array([1, 0, 2])
    z = f64(zv, "z", True)
    logp = F.log_softmax(z, dim=1)
    logp.name = "logp"
    loss = F.nll_loss(logp, cr.tensor(labels))
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    e = np.exp(zv - zv.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    Y = np.eye(3)[labels]
    return Case(rep, {"logp": np.log(p), "Y": Y, "L": -np.mean(np.log(p[range(3), labels])),
                      "∂L/∂logp": -Y / 3, "∂L/∂z": (p - Y) / 3},
                ["logp = log_softmax(z) = ", "L = -(1/N) Σ Y ⊙ logp",
                 "log_softmax and NLL together: ∂L/∂z = (softmax(z) − Y)/N"],
                {z: (p - Y) / 3})
