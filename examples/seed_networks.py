"""The seeds' two small sigmoid networks, built from nn layers and trained for a few steps
with plain SGD and the seeds' loss ½(t − o)²: the 1-1-1 chain (x = 1, target 0.8,
w_h = 0.2, b_h = 0.1, w_o = 0.3, b_o = 0.2, η = 0.5) and a 2-3-2 network (two inputs, three
hidden sigmoids, two sigmoid outputs; no biases, as in seed 003's figure, which gives its
numbers only as images, so the inputs and weights here are our own).

    python examples/seed_networks.py

The first step's w_o is the seed's 0.314477715 up to its 2-decimal rounding of y_h and y_o
(chainrule computes exactly: 0.31448...). See examples/seeds/ for the step-by-step derivations.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one BLAS thread is faster,
os.environ.setdefault("OMP_NUM_THREADS", "1")       # and never fights other work for the cores

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402


def half_mse(output, target):
    """The seeds' loss: ½ Σ (t − o)² (its derivative is simply −(t − o))."""
    return 0.5 * ((target - output) ** 2).sum()


def set_weights(layer, weight, bias=None):
    with cr.no_grad():
        layer.weight.copy_(cr.tensor(weight, dtype=cr.float64))
        if bias is not None:
            layer.bias.copy_(cr.tensor(bias, dtype=cr.float64))


def train(model, x, t, lr, steps, show):
    opt = optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        loss = half_mse(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"  step {step + 1}: loss {loss.item():.8f}  " + show())
    return loss.item()


def one_one_one(steps=5):
    print("1-1-1 network (seed 004): x = 1, target 0.8, eta = 0.5")
    hidden, out = nn.Linear(1, 1, dtype=cr.float64), nn.Linear(1, 1, dtype=cr.float64)
    set_weights(hidden, [[0.2]], [0.1])
    set_weights(out, [[0.3]], [0.2])
    model = nn.Sequential(hidden, nn.Sigmoid(), out, nn.Sigmoid())
    x = cr.tensor([[1.0]], dtype=cr.float64)
    t = cr.tensor([[0.8]], dtype=cr.float64)
    show = lambda: f"w_h {hidden.weight.item():.9f}  w_o {out.weight.item():.9f}"
    return train(model, x, t, lr=0.5, steps=steps, show=show)


def two_three_two(steps=5):
    print("2-3-2 network (seed 003's shape; our numbers): X = (0.35, 0.9), targets (0.5, 0.1), "
          "eta = 0.5")
    hidden = nn.Linear(2, 3, bias=False, dtype=cr.float64)
    out = nn.Linear(3, 2, bias=False, dtype=cr.float64)
    set_weights(hidden, [[0.1, 0.8], [0.4, 0.6], [0.3, 0.5]])   # W_X (out, in), as in PyTorch
    set_weights(out, [[0.3, 0.9, 0.2], [0.7, 0.1, 0.5]])         # W_Y
    model = nn.Sequential(hidden, nn.Sigmoid(), out, nn.Sigmoid())
    x = cr.tensor([[0.35, 0.9]], dtype=cr.float64)
    t = cr.tensor([[0.5, 0.1]], dtype=cr.float64)
    show = lambda: "O after the step = " + str([round(v, 6) for v in model(x).numpy()[0].tolist()])
    return train(model, x, t, lr=0.5, steps=steps, show=show)


if __name__ == "__main__":
    first = one_one_one()
    print()
    second = two_three_two()
