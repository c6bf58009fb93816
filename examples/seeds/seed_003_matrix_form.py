"""Seed 003: a 2-3-2 sigmoid network without biases, E = ½ Σ (T − O)², in matrix form.

The layer view shows δ2 = ∂E/∂a2 ⊙ σ'(z2), δ1 = σ'(z1) ⊙ (W2ᵀ δ2) and ∂E/∂W = δ · inputᵀ,
each checked (✓) against the engine; the last section puts the seed's error propagation
E = Wᵀ E (and seed 004's weight-share split) beside the true gradient.
"""
import chainrule as cr
from chainrule import nn
from chainrule.explain import render
from chainrule.explain.layers import error_split


def main():
    f = cr.float64
    net = nn.Sequential(nn.Linear(2, 3, bias=False, dtype=f), nn.Sigmoid(),
                        nn.Linear(3, 2, bias=False, dtype=f), nn.Sigmoid())
    with cr.no_grad():
        net[0].weight.copy_(cr.tensor([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], dtype=f))
        net[2].weight.copy_(cr.tensor([[0.7, 0.9, 0.2], [0.8, 0.1, 0.4]], dtype=f))
    net[0].weight.name, net[2].weight.name = "W_X", "W_Y"
    x = cr.tensor([0.5, 1.0], dtype=f, name="X")
    t = cr.tensor([1.0, 0.0], dtype=f, name="T")
    loss = ((t - net(x)) ** 2).sum() * 0.5
    loss.name = "E"
    rep = cr.explain(loss)
    rep.step(lr=0.5)
    print(rep)
    print(render.text(error_split(rep)))


if __name__ == "__main__":
    main()
