"""Seed 000: the delta rule for a sigmoid MLP (2-2-1, with biases, L = ½(t − o)²).

Output layer: δ = ∂L/∂o · o(1 − o); hidden unit q: δ_q = o_q(1 − o_q) Σ_k δ_k w_kq;
weights: ∂L/∂w_pq = δ_q o_p. The layer view prints each, unit by unit, with the engine's
numbers. (The seed's δ has the opposite sign: it writes δ = (t − o)·o(1 − o).)
"""
import chainrule as cr
from chainrule import nn


def main():
    f = cr.float64
    net = nn.Sequential(nn.Linear(2, 2, dtype=f), nn.Sigmoid(), nn.Linear(2, 1, dtype=f),
                        nn.Sigmoid())
    with cr.no_grad():
        net[0].weight.copy_(cr.tensor([[0.15, 0.20], [0.25, 0.30]], dtype=f))
        net[0].bias.copy_(cr.tensor([0.35, 0.35], dtype=f))
        net[2].weight.copy_(cr.tensor([[0.40, 0.45]], dtype=f))
        net[2].bias.copy_(cr.tensor([0.60], dtype=f))
    x = cr.tensor([0.05, 0.10], dtype=f, name="x")
    t = cr.tensor([0.01], dtype=f, name="t")
    loss = (0.5 * (t - net(x)) ** 2).sum()
    loss.name = "L"
    rep = cr.explain(loss)
    print(rep)
    print(rep.flow())


if __name__ == "__main__":
    main()
