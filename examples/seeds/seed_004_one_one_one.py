"""Seed 004: back-propagation in a 1-1-1 network, by hand and by chainrule.

x = 1, target y = 0.8, w_h = 0.2, b_h = 0.1, w_o = 0.3, b_o = 0.2, Loss = ½(y − y_o)².
With textbook rounding to 2 decimals chainrule prints the seed's own figures:
y_h = 0.57, y_o = 0.59, Loss = 0.02205, ∂Loss/∂w_o = −0.21 × 0.2419 × 0.57 = −0.02895543,
and after one step with η = 0.5: w_o = 0.314477715.

    python examples/seeds/seed_004_one_one_one.py            # rounded, as the seed
    python examples/seeds/seed_004_one_one_one.py --exact    # exact float64 values
"""
import sys

import chainrule as cr


def network():
    f = cr.float64  # every digit of a hand calculation survives in float64
    x, y = cr.tensor(1.0, dtype=f, name="x"), cr.tensor(0.8, dtype=f, name="y")
    w_h = cr.tensor(0.2, dtype=f, requires_grad=True, name="w_h")
    b_h = cr.tensor(0.1, dtype=f, requires_grad=True, name="b_h")
    w_o = cr.tensor(0.3, dtype=f, requires_grad=True, name="w_o")
    b_o = cr.tensor(0.2, dtype=f, requires_grad=True, name="b_o")
    z_h = w_h * x + b_h
    z_h.name = "z_h"          # named values are the steps of the derivation
    y_h = z_h.sigmoid()
    y_h.name = "y_h"
    z_o = w_o * y_h + b_o
    z_o.name = "z_o"
    y_o = z_o.sigmoid()
    y_o.name = "y_o"
    loss = 0.5 * (y - y_o) ** 2
    loss.name = "Loss"
    return loss, w_o


def main(exact=False):
    loss, w_o = network()
    rep = cr.explain(loss, round=None if exact else 2)   # runs the real backward pass
    rep.step(lr=0.5)                                      # w ← w − η ∂Loss/∂w, shown
    print(rep)
    print(f"w_o after the step: {w_o.item():.9f}")
    path = rep.graph(highlight="w_h").save("seed_004_graph.svg")   # .dot without graphviz
    print(f"graph of the network: {path} (the path to w_h in red)")


if __name__ == "__main__":
    main(exact="--exact" in sys.argv)
