"""Case: static graphs (`cr.compile`). A step captured once and replayed, beside hand-written
NumPy and PyTorch eager:

- the MLP steps of mlp.py (784-128-10 b64, 784-512-512-10 b256), compiled vs hand NumPy;
- the per-op chain 33 × (x·1.0001 + 0.0001).tanh() on 16 elements, forward + backward,
  compiled vs the same NumPy calls made directly;
- a 2-layer LSTM language-model step (embedding 32, hidden 64, bptt 16, batch 8, vocabulary
  VOCAB, SGD with gradient clipping) and the CNN step of cnn.py, compiled vs PyTorch eager;
- the capture's cost (call 2, which runs eagerly while recording) and after how many calls
  the replay has paid it back.
"""
import time

import numpy as np

from .common import assert_close, time_interleaved

CHAIN_N, CHAIN_SIZE, CHAIN_MUL, CHAIN_ADD = 33, 16, 1.0001, 0.0001
VOCAB, EMBED, HIDDEN, BPTT, BATCH, LM_LR, CLIP = 256, 32, 64, 16, 8, 0.5, 0.25


# ---------------------------------------------------------------- the per-op chain

def chain_step(x, seed):
    """chainrule and PyTorch spell it the same way."""
    x.grad = None
    z = x
    for _ in range(CHAIN_N):
        z = (z * CHAIN_MUL + CHAIN_ADD).tanh()
    z.backward(seed)
    return x.grad


def numpy_chain(x):
    """The same NumPy calls the compiled replay makes: forward, then each local derivative."""
    a, b = x.dtype.type(CHAIN_MUL), x.dtype.type(CHAIN_ADD)
    ys, z = [], x
    for _ in range(CHAIN_N):
        z = np.tanh(z * a + b)
        ys.append(z)
    g = np.ones_like(z)
    for y in reversed(ys):
        g = g * (1.0 - y * y)
        g = g * a
    return g


# ---------------------------------------------------------------- the LSTM language model

def lm_problem(seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (BATCH, BPTT + 1))
    return tokens[:, :-1].copy(), tokens[:, 1:].reshape(-1).copy()


def chainrule_lm():
    import chainrule as cr
    from chainrule import nn

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=2, batch_first=True)
            self.head = nn.Linear(HIDDEN, VOCAB)

        def forward(self, x):
            out, _ = self.lstm(self.embed(x))
            return self.head(out.reshape(-1, HIDDEN))

    cr.manual_seed(0)
    model = LM()
    return model, cr.optim.SGD(model.parameters(), lr=LM_LR)


def chainrule_lm_step(model, opt, x, y):
    import chainrule as cr
    from chainrule.nn import functional as F
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    cr.optim.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    return loss


def torch_lm(torch, model):
    tnn = torch.nn

    class LM(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tnn.Embedding(VOCAB, EMBED)
            self.lstm = tnn.LSTM(EMBED, HIDDEN, num_layers=2, batch_first=True)
            self.head = tnn.Linear(HIDDEN, VOCAB)

        def forward(self, x):
            out, _ = self.lstm(self.embed(x))
            return self.head(out.reshape(-1, HIDDEN))

    tmodel = LM()
    state = {k: torch.from_numpy(v._data.copy()) for k, v in model.state_dict().items()}
    tmodel.load_state_dict(state)
    return tmodel, torch.optim.SGD(tmodel.parameters(), lr=LM_LR)


def torch_lm_step(torch, model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    return loss


# ---------------------------------------------------------------- the cases

def _capture_cost(make_step, args, eager_time, replay_time):
    """Seconds of call 1 (eager), call 2 (capture) and the calls it takes to pay it back."""
    import chainrule as cr
    step = cr.compile(make_step())
    t0 = time.perf_counter()
    step(*args)
    t1 = time.perf_counter()
    step(*args)
    t2 = time.perf_counter()
    capture = t2 - t1
    extra = capture - eager_time
    saved = eager_time - replay_time
    calls = extra / saved if saved > 0 else float("inf")
    return {"first": t1 - t0, "capture": capture, "break_even": max(calls, 0.0)}


def mlp_case(size, torch, repeats):
    import chainrule as cr
    from . import mlp
    dims, batch = mlp.SIZES[size]
    params, x, y = mlp.make_problem(dims, batch)
    ref = mlp.NumpyMLP(params)
    model, opt = mlp.chainrule_mlp(params, dims)
    emodel, eopt = mlp.chainrule_mlp(params, dims)
    cx, cy = cr.tensor(x), cr.tensor(y)
    step = cr.compile(lambda a, b: mlp.chainrule_step(model, opt, a, b))
    for _ in range(3):
        step(cx, cy)
    # the replay computes what the hand-written step computes
    r1, r2 = mlp.NumpyMLP(params), mlp.chainrule_mlp(params, dims)
    check = cr.compile(lambda a, b: mlp.chainrule_step(r2[0], r2[1], a, b))
    for _ in range(4):
        loss = check(cx, cy).item()
        ref_loss = r1.step(x, y)
    assert check.stats["replays"] == 2
    assert_close(f"compiled MLP {size} loss", loss, ref_loss)
    for p, q in zip(r2[0].parameters(), r1.params):
        assert_close(f"compiled MLP {size} params", p._data, q)
    fns = {"numpy": lambda: ref.step(x, y), "chainrule": lambda: step(cx, cy),
           "eager": lambda: mlp.chainrule_step(emodel, eopt, cx, cy)}
    times = time_interleaved(fns, repeats)
    times["capture"] = _capture_cost(
        lambda: (lambda a, b, m=mlp.chainrule_mlp(params, dims): mlp.chainrule_step(
            m[0], m[1], a, b)), (cx, cy), times["eager"], times["chainrule"])
    return times


def chain_case(torch, repeats):
    import chainrule as cr
    data = np.random.default_rng(0).uniform(-1, 1, CHAIN_SIZE).astype(np.float32)
    cx = cr.tensor(data, requires_grad=True)
    seed = cr.ones(CHAIN_SIZE)
    step = cr.compile(chain_step)
    ref = numpy_chain(data)
    for _ in range(3):
        got = step(cx, seed)
    assert_close("compiled chain", got.numpy(), ref)
    ex = cr.tensor(data, requires_grad=True)
    fns = {"numpy": lambda: numpy_chain(data), "chainrule": lambda: step(cx, seed),
           "eager": lambda: chain_step(ex, seed)}
    if torch is not None:
        tx, tseed = torch.tensor(data, requires_grad=True), torch.ones(CHAIN_SIZE)
        assert_close("chain (torch)", chain_step(tx, tseed).numpy(), ref)
        fns["torch"] = lambda: chain_step(tx, tseed)
    times = time_interleaved(fns, repeats * 10, rounds=5)
    times["capture"] = _capture_cost(lambda: chain_step, (cr.tensor(data, requires_grad=True),
                                                          seed), times["eager"],
                                     times["chainrule"])
    return times


def lm_case(torch, repeats):
    import chainrule as cr
    x, y = lm_problem()
    model, opt = chainrule_lm()
    emodel, eopt = chainrule_lm()
    cx, cy = cr.tensor(x), cr.tensor(y)
    step = cr.compile(lambda a, b: chainrule_lm_step(model, opt, a, b))
    fns = {"chainrule": lambda: step(cx, cy),
           "eager": lambda: chainrule_lm_step(emodel, eopt, cx, cy)}
    if torch is not None:
        tmodel, topt = torch_lm(torch, chainrule_lm()[0])
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        # same weights, same data: the first losses agree
        cmodel, copt = chainrule_lm()
        first = chainrule_lm_step(cmodel, copt, cx, cy).item()
        tfirst = torch_lm_step(torch, tmodel, topt, tx, ty).item()
        assert_close("LM loss vs torch", first, tfirst, rtol=1e-4)
        fns["torch"] = lambda: torch_lm_step(torch, tmodel, topt, tx, ty)
    for _ in range(3):
        step(cx, cy)
    times = time_interleaved(fns, repeats)
    times["capture"] = _capture_cost(
        lambda: (lambda a, b, m=chainrule_lm(): chainrule_lm_step(m[0], m[1], a, b)),
        (cx, cy), times["eager"], times["chainrule"])
    return times


def cnn_case(torch, repeats):
    import chainrule as cr
    from . import cnn
    from .mlp import chainrule_step, torch_step
    params, x, y = cnn.make_problem()
    model, opt = cnn.chainrule_cnn(params)
    emodel, eopt = cnn.chainrule_cnn(params)
    cx, cy = cr.tensor(x), cr.tensor(y)
    step = cr.compile(lambda a, b: chainrule_step(model, opt, a, b))
    for _ in range(3):
        step(cx, cy)
    fns = {"chainrule": lambda: step(cx, cy), "eager": lambda: chainrule_step(emodel, eopt, cx, cy)}
    if torch is not None:
        tmodel, topt = cnn.torch_cnn(torch, params)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        fns["torch"] = lambda: torch_step(torch, tmodel, topt, tx, ty)
    times = time_interleaved(fns, repeats)
    times["capture"] = _capture_cost(
        lambda: (lambda a, b, m=cnn.chainrule_cnn(params): chainrule_step(m[0], m[1], a, b)),
        (cx, cy), times["eager"], times["chainrule"])
    return times
