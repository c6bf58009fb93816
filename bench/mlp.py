"""Case 1: one MLP training step (forward, backward, SGD update), ReLU hidden layers and
softmax cross-entropy, in chainrule, hand-written NumPy backprop and PyTorch."""
import numpy as np

from .common import assert_close, time_interleaved

SIZES = {
    "small": ((784, 128, 10), 64),
    "medium": ((784, 512, 512, 10), 256),
    "large": ((784, 1024, 1024, 10), 1024),
}
LR = 0.01


def make_problem(dims, batch, seed=0):
    """Weights (PyTorch layout: W (out, in)), a batch of inputs and integer labels."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        bound = 1 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    x = rng.standard_normal((batch, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], batch)
    return params, x, y


# ---------------------------------------------------------------- hand-written NumPy

class NumpyMLP:
    """The seeds' matrix formulas, coded by hand: Z = A Wᵀ + b, A = max(Z, 0), softmax
    cross-entropy with dZ = (softmax(Z) - Y) / m, dW = dZᵀ A, db = Σ dZ, dA = dZ W."""

    def __init__(self, params):
        self.params = [p.copy() for p in params]

    def grads(self, x, y):
        ps = self.params
        acts, zs = [x], []
        a = x
        for i in range(0, len(ps), 2):
            z = a @ ps[i].T
            z += ps[i + 1]
            zs.append(z)
            a = np.maximum(z, 0) if i + 2 < len(ps) else z
            acts.append(a)
        logits = acts[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        m = x.shape[0]
        loss = float(np.mean(np.log(s[:, 0]) - shifted[np.arange(m), y]))
        dz = e / s
        dz[np.arange(m), y] -= 1
        dz /= m
        grads = [None] * len(ps)
        for i in range(len(ps) - 2, -1, -2):
            a_prev = acts[i // 2]
            grads[i] = dz.T @ a_prev
            grads[i + 1] = dz.sum(axis=0)
            if i:
                dz = (dz @ ps[i]) * (zs[i // 2 - 1] > 0)
        return loss, grads

    def step(self, x, y):
        loss, grads = self.grads(x, y)
        for p, g in zip(self.params, grads):
            p -= LR * g
        return loss


# ---------------------------------------------------------------- chainrule

def chainrule_mlp(params, dims):
    import chainrule as cr
    from chainrule import nn
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        lin = nn.Linear(fan_in, fan_out)
        lin.weight.data = params[2 * i].copy()
        lin.bias.data = params[2 * i + 1].copy()
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    return model, cr.optim.SGD(model.parameters(), lr=LR)


def chainrule_step(model, opt, x, y):
    from chainrule.nn import functional as F
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


# ---------------------------------------------------------------- PyTorch

def torch_mlp(torch, params, dims):
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        lin = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(params[2 * i]))
            lin.bias.copy_(torch.from_numpy(params[2 * i + 1]))
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    return model, torch.optim.SGD(model.parameters(), lr=LR)


def torch_step(torch, model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


# ---------------------------------------------------------------- the case

def check_gradients(params, dims, x, y, torch):
    """chainrule's (and PyTorch's) gradients must equal the hand-written reference's."""
    import chainrule as cr
    from chainrule.nn import functional as F
    _, ref = NumpyMLP(params).grads(x, y)
    model, _ = chainrule_mlp(params, dims)
    F.cross_entropy(model(cr.tensor(x)), cr.tensor(y)).backward()
    for i, (p, g) in enumerate(zip(model.parameters(), ref)):
        assert_close(f"chainrule MLP param {i}", p.grad.numpy(), g)
    if torch is not None:
        tmodel, _ = torch_mlp(torch, params, dims)
        torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)),
                                          torch.from_numpy(y)).backward()
        for i, (p, g) in enumerate(zip(tmodel.parameters(), ref)):
            assert_close(f"torch MLP param {i}", p.grad.numpy(), g)


def run(size, torch, repeats):
    import chainrule as cr
    dims, batch = SIZES[size]
    params, x, y = make_problem(dims, batch)
    check_gradients(params, dims, x, y, torch)
    ref = NumpyMLP(params)
    model, opt = chainrule_mlp(params, dims)
    cx, cy = cr.tensor(x), cr.tensor(y)
    fns = {"numpy": lambda: ref.step(x, y),
           "chainrule": lambda: chainrule_step(model, opt, cx, cy)}
    if torch is not None:
        tmodel, topt = torch_mlp(torch, params, dims)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        fns["torch"] = lambda: torch_step(torch, tmodel, topt, tx, ty)
    return time_interleaved(fns, repeats)
