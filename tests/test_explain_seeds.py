"""The seeds' figures, to the printed digit, from `cr.explain` and `chainrule explain`."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.explain.seeds import build

SEED_004_ROUNDED = [
    "y_h = σ(z_h) = σ(0.3) = 0.57",
    "y_o = σ(z_o) = σ(0.371) = 0.59",
    "Loss = 0.5 · (y - y_o)^2 = 0.5 × (0.8 - 0.59)^2 = 0.02205",
    "∂Loss/∂y_o = 0.5 · 2·(y - y_o) · (-1) = 0.5 × 2 × (0.8 - 0.59) × (-1) = -0.21",
    "∂y_o/∂z_o = y_o(1 - y_o) = 0.59 × (1 - 0.59) = 0.2419",
    "∂y_h/∂z_h = y_h(1 - y_h) = 0.57 × (1 - 0.57) = 0.2451",
    "∂Loss/∂w_o = ∂Loss/∂y_o · ∂y_o/∂z_o · ∂z_o/∂w_o = -0.21 × 0.2419 × 0.57 = -0.02895543",
    "∂Loss/∂b_o = ∂Loss/∂y_o · ∂y_o/∂z_o · ∂z_o/∂b_o = -0.21 × 0.2419 × 1 = -0.050799",
    "∂Loss/∂w_h = ∂Loss/∂y_o · ∂y_o/∂z_o · ∂z_o/∂y_h · ∂y_h/∂z_h · ∂z_h/∂w_h = "
    "-0.21 × 0.2419 × 0.3 × 0.2451 × 1 = -0.00373525",
    "∂Loss/∂b_h = ∂Loss/∂y_o · ∂y_o/∂z_o · ∂z_o/∂y_h · ∂y_h/∂z_h · ∂z_h/∂b_h = "
    "-0.21 × 0.2419 × 0.3 × 0.2451 × 1 = -0.00373525",
    "w_o(1) = w_o(0) − η · ∂Loss/∂w_o = 0.3 − 0.5 × (-0.02895543) = 0.314477715",
    "b_o(1) = b_o(0) − η · ∂Loss/∂b_o = 0.2 − 0.5 × (-0.050799) = 0.2253995",
    "w_h(1) = w_h(0) − η · ∂Loss/∂w_h = 0.2 − 0.5 × (-0.00373525) = 0.201867625",
    "b_h(1) = b_h(0) − η · ∂Loss/∂b_h = 0.1 − 0.5 × (-0.00373525) = 0.101867625",
]


def net_111():
    f = cr.float64
    x, y = cr.tensor(1.0, dtype=f, name="x"), cr.tensor(0.8, dtype=f, name="y")
    params = [cr.tensor(v, dtype=f, requires_grad=True, name=n)
              for v, n in ((0.2, "w_h"), (0.1, "b_h"), (0.3, "w_o"), (0.2, "b_o"))]
    w_h, b_h, w_o, b_o = params
    z_h = w_h * x + b_h
    z_h.name = "z_h"
    y_h = z_h.sigmoid()
    y_h.name = "y_h"
    z_o = w_o * y_h + b_o
    z_o.name = "z_o"
    y_o = z_o.sigmoid()
    y_o.name = "y_o"
    loss = 0.5 * (y - y_o) ** 2
    loss.name = "Loss"
    return loss, params


def test_seed_004_rounded_prints_the_seed_figures():
    loss, params = net_111()
    rep = cr.explain(loss, round=2)
    rep.step(0.5)
    text = str(rep)
    for line in SEED_004_ROUNDED:
        assert line in text, line
    assert [p.item() for p in params] == pytest.approx(
        [0.201867625, 0.101867625, 0.314477715, 0.2253995], abs=1e-12)


def test_seed_004_rounded_grads_are_the_engines_on_the_rounded_graph():
    loss, params = net_111()
    rep = cr.explain(loss, round=2)
    # .grad holds the exact product of the rounded factors; the derivation writes 8 decimals
    assert params[2].grad.item() == pytest.approx(-0.21 * 0.2419 * 0.57, abs=1e-15)
    assert params[0].grad.item() == pytest.approx(-0.21 * 0.2419 * 0.3 * 0.2451, abs=1e-15)
    assert rep.written_grad("w_h") == -0.00373525
    assert rep.value("y_h") == 0.57 and rep.value("y_o") == 0.59
    assert rep.loss == pytest.approx(0.02205, abs=1e-15)


def test_seed_004_exact_matches_plain_backward():
    loss, params = net_111()
    rep = cr.explain(loss)
    loss2, params2 = net_111()
    loss2.backward()
    for p, q in zip(params, params2):
        assert p.grad.item() == q.grad.item()
    text = str(rep)
    assert "y_h = σ(z_h) = σ(0.3) = 0.5744425168" in text
    assert "rounded" not in text
    # the exact values by hand, in float64
    yh = 1 / (1 + np.exp(-0.3))
    yo = 1 / (1 + np.exp(-(0.3 * yh + 0.2)))
    expected = -(0.8 - yo) * yo * (1 - yo) * yh
    assert params[2].grad.item() == pytest.approx(expected, rel=1e-12)
    assert f"= {expected:.10g}" in text


def test_seed_001_table_and_dh_dw():
    ex = build("seed-001", verify=True)
    rep = ex.explanations()[0]
    text = rep.text()
    assert "h5 = 1 / h4  | ∂h5/∂h4 = -1/h4² = -1/2² = -0.25 ✓" in text
    assert "h3 = exp(h2) | ∂h3/∂h2 = exp(h2) = exp(0) = 1 ✓" in text
    assert "∂h1/∂w = x = 1 ✓;  ∂h1/∂x = w = 0 ✓" in text
    assert ("∂h5/∂w = ∂h5/∂h4 · ∂h4/∂h3 · ∂h3/∂h2 · ∂h2/∂h1 · ∂h1/∂w = "
            "-0.25 × 1 × 1 × (-1) × 1 = 0.25") in text
    assert rep.grad("w") == 0.25
    # the three losses: each gradient equals a float64 closed form
    mse, bce, ce = ex.explanations()[1:]
    assert mse.grad("w") == pytest.approx(2 * (1.1 - 1) * 2 + 2 * (1.6 - 2) * 3)
    p1, p2 = 1 / (1 + np.exp(-0.6)), 1 / (1 + np.exp(1.4))
    assert bce.loss == pytest.approx(-(np.log(p1) + np.log(1 - p2)) / 2)
    assert bce.grad("w") == pytest.approx(((p1 - 1) * 1 + p2 * -1.5) / 2)
    X = np.array([[1.0, 2.0], [0.5, -1.0]])
    W = np.array([[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]])
    Y = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    z = X @ W.T
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(ce.grad("W"), ((p - Y).T @ X) / 2, rtol=1e-10)


def test_seed_002_sum_over_samples_and_paths():
    ex = build("seed-002")
    per_sample, two_paths = ex.explanations()
    text = per_sample.text()
    g1 = (0.5 - 1) * 0.5 * 0.5 * 1.0                  # sample 1: a = σ(0) = 0.5
    a2 = 1 / (1 + np.exp(-0.65))
    g2 = a2 * a2 * (1 - a2) * 0.5
    assert per_sample.grad("w1") == pytest.approx(g1 + g2, rel=1e-12)
    assert (f"∂L/∂w1 = ∂L/∂C1 · ∂C1/∂w1 + ∂L/∂C2 · ∂C2/∂w1 = (1 × (-0.125)) + "
            f"(1 × {g2:.10g}) = -0.125 + {g2:.10g} = {g1 + g2:.10g}") in text
    assert "2 paths lead from L to w1" in text
    t2 = two_paths.text()
    assert ("∂C/∂w1 = ∂C/∂z' · ∂z'/∂a · ∂a/∂z · ∂z/∂w1 + ∂C/∂z'' · ∂z''/∂a · ∂a/∂z · ∂z/∂w1"
            in t2)
    a = 1 / (1 + np.exp(-0.2))
    expected = a * (1 - a) * ((a * 0.8 - 1) * 0.8 + (a * -0.6) * -0.6)
    assert two_paths.grad("w1") == pytest.approx(expected, rel=1e-12)


def test_seed_003_matrix_form_and_error_split():
    ex = build("seed-003", lr=None)
    rep = ex.explanations()[0]
    X, T = np.array([0.5, 1.0]), np.array([1.0, 0.0])
    W1 = np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]])
    W2 = np.array([[0.7, 0.9, 0.2], [0.8, 0.1, 0.4]])
    a1 = 1 / (1 + np.exp(-W1 @ X))
    o = 1 / (1 + np.exp(-W2 @ a1))
    d2 = -(T - o) * o * (1 - o)
    d1 = a1 * (1 - a1) * (W2.T @ d2)
    np.testing.assert_allclose(rep.grad("W_Y"), np.outer(d2, a1), rtol=1e-12)
    np.testing.assert_allclose(rep.grad("W_X"), np.outer(d1, X), rtol=1e-12)
    np.testing.assert_allclose(rep.grad("z1"), d1, rtol=1e-12)
    text = ex.render("text")
    assert "δ1 = f'(z1) ⊙ (W2ᵀ δ2) = " in text and text.count("✗") == 0
    assert text.count("✓") >= 3
    plain = W2.T @ (T - o)
    assert "unnormalised (seed 003): E1 = W2ᵀ E2 = [" + ", ".join(
        f"{v:.6g}" for v in plain) + "]" in text


def test_seed_000_delta_rule():
    ex = build("seed-000")
    rep = ex.explanations()[0]
    x, t = np.array([0.05, 0.10]), 0.01
    W1, b1 = np.array([[0.15, 0.20], [0.25, 0.30]]), np.array([0.35, 0.35])
    W2, b2 = np.array([0.40, 0.45]), 0.60
    h = 1 / (1 + np.exp(-(W1 @ x + b1)))
    o = 1 / (1 + np.exp(-(W2 @ h + b2)))
    dv = -(t - o) * o * (1 - o)                 # δ = ∂L/∂z, the seed's δ with the sign flipped
    dq = h * (1 - h) * W2 * dv
    assert rep.grad("2.bias") == pytest.approx(dv, rel=1e-12)
    np.testing.assert_allclose(rep.grad("0.weight"), np.outer(dq, x), rtol=1e-12)
    text = rep.text()
    assert f"δ1[0] = f'(z1[0]) · Σ_j δ2[j] w[j,0] = {h[0] * (1 - h[0]):.6g} × " \
           f"({dv:.6g} × 0.4) = {dq[0]:.6g}" in text


def test_several_hidden_neurons_split_vs_true_gradient():
    ex = build("seed-004", lr=None)
    text = ex.render("text")
    assert "(its LossE = 0.4 LossG, LossF = 0.6 LossG)" in text
    rep = ex.explanations()[1]
    W_gh = np.array([[0.2, 0.3], [0.6, 0.4]])
    W_ef = np.array([[0.5, 0.3], [0.2, 0.6]])
    e3 = -np.asarray(rep.grad("y_GH"))
    e2 = (W_gh / W_gh.sum(1, keepdims=True)).T @ e3
    e1 = (W_ef / W_ef.sum(1, keepdims=True)).T @ e2          # the seed chains its own errors
    for k, e in ((2, e2), (1, e1)):
        assert f"weight-share split (seed 004): e{k}[q] = Σ_k w[k,q]/Σ_p w[k,p] · " \
               f"e{k + 1}[k] = [" + ", ".join(f"{v:.6g}" for v in e) + "]" in text
    true = -(W_gh.T @ np.asarray(rep.grad("z3")))
    np.testing.assert_allclose(-np.asarray(rep.grad("y_EF")), true, rtol=1e-12)
    assert "true gradient: −∂Loss/∂y_EF = W3ᵀ (−δ3) = [" + \
        ", ".join(f"{v:.6g}" for v in true) + "]" in text


def test_cli_prints_the_rounded_seed(capsys):
    from chainrule.cli import main
    assert main(["explain", "--example", "seed-004", "--round", "2"]) == 0
    out = capsys.readouterr().out
    for line in SEED_004_ROUNDED:
        assert line in out, line
