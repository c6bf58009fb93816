"""Case 2: one small-CNN training step on 1×28×28 images, batch 64: conv 3×3 (1→8), ReLU,
conv 3×3 (8→16), ReLU, 2×2 max-pool, linear (2304→10), softmax cross-entropy, SGD."""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .common import assert_close, time_interleaved
from .mlp import LR

BATCH, C1, C2, CLASSES = 64, 8, 16, 10
FLAT = C2 * 12 * 12


def make_problem(seed=0):
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in):
        b = 1 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)
    params = [uniform((C1, 1, 3, 3), 9), uniform((C1,), 9),
              uniform((C2, C1, 3, 3), C1 * 9), uniform((C2,), C1 * 9),
              uniform((CLASSES, FLAT), FLAT), uniform((CLASSES,), FLAT)]
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH)
    return params, x, y


# ---------------------------------------------------------------- hand-written NumPy

def _im2col(x):
    """(N, C, H, W) -> (N, C·9, OH·OW): the 3×3 windows as columns (one strided copy)."""
    n, c, h, w = x.shape
    oh, ow = h - 2, w - 2
    s = x.strides
    win = as_strided(x, (n, c, 3, 3, oh, ow), (s[0], s[1], s[2], s[3], s[2], s[3]))
    return win.reshape(n, c * 9, oh * ow)


def _col2im(cols, shape):
    """The adjoint of _im2col: add each window's gradient back onto its pixels."""
    n, c, h, w = shape
    oh, ow = h - 2, w - 2
    cols = cols.reshape(n, c, 3, 3, oh, ow)
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(3):
        for j in range(3):
            out[:, :, i:i + oh, j:j + ow] += cols[:, :, i, j]
    return out


class NumpyCNN:
    """Convolution as im2col + matmul, its gradients as matmuls + col2im, by hand."""

    def __init__(self, params):
        self.params = [p.copy() for p in params]

    def _conv(self, x, w, b):
        cols = _im2col(x)
        out = np.matmul(w.reshape(w.shape[0], -1), cols)          # (N, OC, OH·OW)
        out += b[:, None]
        n, _, h, wd = x.shape
        return out.reshape(n, w.shape[0], h - 2, wd - 2), cols

    @staticmethod
    def _conv_back(dout, x_shape, cols, w):
        n, oc = dout.shape[:2]
        d = dout.reshape(n, oc, -1)
        dw = np.einsum("nop,nkp->ok", d, cols).reshape(w.shape)
        db = d.sum(axis=(0, 2))
        dx = _col2im(np.matmul(w.reshape(oc, -1).T, d), x_shape)
        return dx, dw, db

    def grads(self, x, y):
        w1, b1, w2, b2, w3, b3 = self.params
        z1, cols1 = self._conv(x, w1, b1)
        a1 = np.maximum(z1, 0)
        z2, cols2 = self._conv(a1, w2, b2)
        a2 = np.maximum(z2, 0)
        n = x.shape[0]
        win = a2.reshape(n, C2, 12, 2, 12, 2)
        pooled = win.max(axis=(3, 5))
        flat = pooled.reshape(n, FLAT)
        logits = flat @ w3.T + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        p = e / e.sum(axis=1, keepdims=True)
        p[np.arange(n), y] -= 1
        dlogits = p / n
        dw3, db3 = dlogits.T @ flat, dlogits.sum(axis=0)
        dpooled = (dlogits @ w3).reshape(n, C2, 12, 1, 12, 1)
        # NOTE: ties in a window all get the gradient; they only occur among ReLU zeros,
        # where the ReLU below blocks it anyway.
        da2 = ((win == pooled[:, :, :, None, :, None]) * dpooled).reshape(a2.shape)
        dz2 = da2 * (z2 > 0)
        da1, dw2, db2 = self._conv_back(dz2, a1.shape, cols2, w2)
        dz1 = da1 * (z1 > 0)
        _, dw1, db1 = self._conv_back(dz1, x.shape, cols1, w1)
        return [dw1, db1, dw2, db2, dw3, db3]

    def step(self, x, y):
        for p, g in zip(self.params, self.grads(x, y)):
            p -= LR * g


# ---------------------------------------------------------------- chainrule and PyTorch

def _layers(nn, conv, pool, flatten, linear, relu):
    return [conv(1, C1, 3), relu(), conv(C1, C2, 3), relu(), pool(2), flatten(),
            linear(FLAT, CLASSES)]


def chainrule_cnn(params):
    import chainrule as cr
    from chainrule import nn
    model = nn.Sequential(*_layers(nn, nn.Conv2d, nn.MaxPool2d, nn.Flatten, nn.Linear, nn.ReLU))
    for p, value in zip(model.parameters(), params):
        p.data = value.copy()
    return model, cr.optim.SGD(model.parameters(), lr=LR)


def torch_cnn(torch, params):
    tnn = torch.nn
    model = tnn.Sequential(*_layers(tnn, tnn.Conv2d, tnn.MaxPool2d, tnn.Flatten, tnn.Linear,
                                    tnn.ReLU))
    with torch.no_grad():
        for p, value in zip(model.parameters(), params):
            p.copy_(torch.from_numpy(value))
    return model, torch.optim.SGD(model.parameters(), lr=LR)


def check_gradients(params, x, y, torch):
    import chainrule as cr
    from chainrule.nn import functional as F
    ref = NumpyCNN(params).grads(x, y)
    model, _ = chainrule_cnn(params)
    F.cross_entropy(model(cr.tensor(x)), cr.tensor(y)).backward()
    for i, (p, g) in enumerate(zip(model.parameters(), ref)):
        assert_close(f"chainrule CNN param {i}", p.grad.numpy(), g, rtol=1e-3, atol=1e-5)
    if torch is not None:
        tmodel, _ = torch_cnn(torch, params)
        torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)),
                                          torch.from_numpy(y)).backward()
        for i, (p, g) in enumerate(zip(tmodel.parameters(), ref)):
            assert_close(f"torch CNN param {i}", p.grad.numpy(), g, rtol=1e-3, atol=1e-5)


def run(torch, repeats):
    import chainrule as cr
    from .mlp import chainrule_step, torch_step
    params, x, y = make_problem()
    check_gradients(params, x, y, torch)
    ref = NumpyCNN(params)
    model, opt = chainrule_cnn(params)
    cx, cy = cr.tensor(x), cr.tensor(y)
    fns = {"numpy": lambda: ref.step(x, y),
           "chainrule": lambda: chainrule_step(model, opt, cx, cy)}
    if torch is not None:
        tmodel, topt = torch_cnn(torch, params)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        fns["torch"] = lambda: torch_step(torch, tmodel, topt, tx, ty)
    return time_interleaved(fns, repeats)
