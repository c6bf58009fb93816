"""Case 3: per-op overhead. A chain of 100 elementwise ops (× const, + const, sin) on a
16-element tensor, forward and backward; reported in microseconds per op. The hand-written
NumPy version keeps a minimal tape of (kind, saved array) and walks it back: the floor any
tape-based engine on NumPy pays."""
import numpy as np

from .common import assert_close, time_interleaved

N_OPS, SIZE = 100, 16
MUL, ADD = 1.01, 0.5


def framework_chain(x, seed):
    """The chain on a tensor that records its graph: chainrule's and PyTorch's spelling of it
    is the same, so one function times both."""
    z = x
    for i in range(N_OPS):
        k = i % 3
        z = z * MUL if k == 0 else (z + ADD if k == 1 else z.sin())
    z.backward(seed)
    return x


def numpy_chain(x):
    mul, add = x.dtype.type(MUL), x.dtype.type(ADD)
    tape, z = [], x
    for i in range(N_OPS):
        k = i % 3
        if k == 0:
            tape.append((0, None))
            z = z * mul
        elif k == 1:
            tape.append((1, None))
            z = z + add
        else:
            tape.append((2, z))
            z = np.sin(z)
    g = np.ones_like(z)
    for kind, saved in reversed(tape):
        if kind == 0:
            g = g * mul
        elif kind == 2:
            g = g * np.cos(saved)
    return g


def run(torch, repeats):
    """Seconds per op (forward + backward) for each implementation."""
    import chainrule as cr
    data = np.random.default_rng(0).uniform(-1, 1, SIZE).astype(np.float32)
    cx = cr.tensor(data, requires_grad=True)
    cseed = cr.ones(SIZE)
    ref = numpy_chain(data)
    assert_close("per-op chain", framework_chain(cx, cseed).grad.numpy(), ref)

    def cr_step():
        cx.grad = None
        framework_chain(cx, cseed)
    fns = {"numpy": lambda: numpy_chain(data), "chainrule": cr_step}
    if torch is not None:
        tx = torch.tensor(data, requires_grad=True)
        tseed = torch.ones(SIZE)
        assert_close("per-op chain (torch)", framework_chain(tx, tseed).grad.numpy(), ref)

        def torch_step():
            tx.grad = None
            framework_chain(tx, tseed)
        fns["torch"] = torch_step
    times = time_interleaved(fns, repeats * 10, rounds=5)
    return {name: t / N_OPS for name, t in times.items()}
