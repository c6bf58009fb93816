"""The numbers of the seed documents (/work/shared/seeds), reproduced by the engine.

Seed 001: h(x) = 1/(1 + exp(-w·x)) split into h1..h5; dh/dw = 0.25 at x = 1, w = 0.
Seed 002: the chain rule, case 1 (a chain) and case 2 (two paths: dz/ds = ∂z/∂x·dx/ds +
∂z/∂y·dy/ds).
Seed 004: a 1-1-1 sigmoid network, Loss = ½(y - y_o)², one SGD step with η = 0.5. The seed's
printed figures use values rounded to 2 decimals (y_h = 0.57, y_o = 0.59); here the exact
float64 values are checked against a hand computation in NumPy, and the seed's rounded chain
is reproduced from its rounded factors.
"""
import numpy as np
import pytest

import chainrule as cr


def f64(v, requires_grad=False):
    return cr.tensor(v, dtype=cr.float64, requires_grad=requires_grad)


# ---- seed 001 ----
def seed001_graph(w, x):
    h1 = w * x
    h2 = h1 * -1.0
    h3 = h2.exp()
    h4 = 1.0 + h3
    h5 = 1.0 / h4
    return h1, h2, h3, h4, h5


def test_seed001_dh_dw_is_a_quarter():
    w, x = f64(0.0, True), f64(1.0)
    *_, h5 = seed001_graph(w, x)
    assert h5.item() == 0.5
    h5.backward()
    assert w.grad.item() == 0.25


def test_seed001_each_local_derivative():
    """The table of the seed: ∂h1/∂w = x, ∂h2/∂h1 = -1, ∂h3/∂h2 = exp(h2), ∂h4/∂h3 = 1,
    ∂h5/∂h4 = -1/h4² (= -0.25 at h4 = 2), and their product is the chain rule."""
    w, x = f64(0.0, True), f64(1.0, True)
    h1, h2, h3, h4, h5 = seed001_graph(w, x)

    def local(out, inp):
        (g,) = cr.autograd.grad(out, inp, retain_graph=True)
        return g.item()
    factors = [local(h5, h4), local(h4, h3), local(h3, h2), local(h2, h1), local(h1, w)]
    assert factors == [-0.25, 1.0, 1.0, -1.0, 1.0]
    assert local(h1, x) == 0.0                       # ∂h1/∂x = w = 0
    assert np.prod(factors) == 0.25 == local(h5, w)


# ---- seed 002 ----
def test_seed002_case1_chain():
    """y = g(x), z = h(y): dz/dx = dz/dy · dy/dx, with g = sin, h = exp."""
    x = f64(0.4, True)
    y = x.sin()
    z = y.exp()
    (dz_dy,) = cr.autograd.grad(z, y, retain_graph=True)
    (dy_dx,) = cr.autograd.grad(y, x, retain_graph=True)
    z.backward()
    assert dz_dy.item() == pytest.approx(np.exp(np.sin(0.4)), rel=1e-15)
    assert x.grad.item() == pytest.approx(dz_dy.item() * dy_dx.item(), rel=1e-15)


def test_seed002_case2_sum_of_paths():
    """x = g(s) = s², y = h(s) = exp(s), z = k(x, y) = x·y + sin(x):
    dz/ds = ∂z/∂x·dx/ds + ∂z/∂y·dy/ds, each factor also checked on its own."""
    s = f64(0.6, True)
    x, y = s ** 2, s.exp()
    z = x * y + x.sin()
    dz_dx, dz_dy = cr.autograd.grad(z, [x, y], retain_graph=True)
    (dx_ds,) = cr.autograd.grad(x, s, retain_graph=True)
    (dy_ds,) = cr.autograd.grad(y, s, retain_graph=True)
    z.backward()
    sv = 0.6
    xv, yv = sv ** 2, np.exp(sv)
    assert dz_dx.item() == pytest.approx(yv + np.cos(xv), rel=1e-15)
    assert dz_dy.item() == pytest.approx(xv, rel=1e-15)
    assert (dx_ds.item(), dy_ds.item()) == pytest.approx((2 * sv, yv), rel=1e-15)
    paths = dz_dx.item() * dx_ds.item() + dz_dy.item() * dy_ds.item()
    assert s.grad.item() == pytest.approx(paths, rel=1e-15)


# ---- seed 004 ----
X, Y, ETA = 1.0, 0.8, 0.5
W_H, B_H, W_O, B_O = 0.2, 0.1, 0.3, 0.2


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hand_gradients():
    """The chain rule written out by hand in NumPy float64 (the seed's derivation)."""
    y_h = _sigmoid(W_H * X + B_H)
    y_o = _sigmoid(W_O * y_h + B_O)
    dloss_dyo = -(Y - y_o)
    delta_o = dloss_dyo * y_o * (1 - y_o)               # ∂Loss/∂z_o
    delta_h = delta_o * W_O * y_h * (1 - y_h)           # ∂Loss/∂z_h
    loss = 0.5 * (Y - y_o) ** 2
    return loss, {"w_o": delta_o * y_h, "b_o": delta_o, "w_h": delta_h * X, "b_h": delta_h}


def engine_network():
    params = {k: f64(v, True) for k, v in
              {"w_h": W_H, "b_h": B_H, "w_o": W_O, "b_o": B_O}.items()}
    y_h = (params["w_h"] * X + params["b_h"]).sigmoid()
    y_o = (params["w_o"] * y_h + params["b_o"]).sigmoid()
    loss = 0.5 * (Y - y_o) ** 2
    return params, loss


def test_seed004_gradients_exact_in_float64():
    params, loss = engine_network()
    loss.backward()
    hand_loss, hand = hand_gradients()
    assert loss.item() == pytest.approx(hand_loss, rel=1e-15)
    for name, value in hand.items():
        assert params[name].grad.item() == pytest.approx(value, rel=1e-14, abs=1e-17), name
    # the figure, to the digits it prints
    assert params["w_o"].grad.item() == pytest.approx(-0.028856075983625, abs=1e-15)
    assert params["w_h"].grad.item() == params["b_h"].grad.item()   # ∂z_h/∂w_h = x = 1


def test_seed004_one_sgd_step_by_hand():
    params, loss = engine_network()
    loss.backward()
    with cr.no_grad():
        for p in params.values():
            p -= ETA * p.grad
    _, hand = hand_gradients()
    start = {"w_h": W_H, "b_h": B_H, "w_o": W_O, "b_o": B_O}
    for name, p in params.items():
        assert p.item() == pytest.approx(start[name] - ETA * hand[name], rel=1e-15), name
    # near the seed's printed updates, which were computed from rounded intermediate values
    assert params["w_o"].item() == pytest.approx(0.314477715, abs=2e-4)
    assert params["b_o"].item() == pytest.approx(0.2253995, abs=5e-4)
    assert params["w_h"].item() == pytest.approx(0.201867625, abs=5e-5)
    # and the loss goes down after the step
    assert _loss_at({k: p.item() for k, p in params.items()}) < loss.item()


def _loss_at(p):
    y_h = _sigmoid(p["w_h"] * X + p["b_h"])
    y_o = _sigmoid(p["w_o"] * y_h + p["b_o"])
    return 0.5 * (Y - y_o) ** 2


def test_seed004_rounded_chain_reproduces_the_printed_figures():
    """The seed's -0.02895543 is -0.21 × 0.2419 × 0.57, the rounded factors; the exact
    gradient differs from it in the fourth significant digit."""
    rounded = -0.21 * 0.2419 * 0.57
    assert rounded == pytest.approx(-0.02895543, abs=1e-12)
    assert round(0.59 * (1 - 0.59), 4) == 0.2419
    _, hand = hand_gradients()
    assert abs(hand["w_o"] - rounded) > 1e-5
    assert -0.21 * 0.2419 * 0.3 * 0.2451 * 1 == pytest.approx(-0.00373525, abs=1e-8)
