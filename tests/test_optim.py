"""Optimizers, clipping and schedules: PyTorch trajectory parity (float64, 20 steps, 1e-6),
state_dict round trips, and the errors for misuse."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.errors import CheckpointError, ChainruleError, DTypeError, OptimizerError
from chainrule.optim import lr_scheduler as S

STEPS = 20
SHAPES = [(3, 4), (4,)]


def _grad_fn(arrays, c):
    """A fixed gradient field g(p) = p^3 + c - sin(3p): same for both libraries."""
    return [p ** 3 + ci - np.sin(3 * p) for p, ci in zip(arrays, c)]


def _start(seed=0):
    rng = np.random.default_rng(seed)
    return ([rng.normal(size=s) for s in SHAPES], [rng.normal(size=s) for s in SHAPES])


def _run_ours(make, init, c, steps=STEPS, sched=None):
    params = [cr.tensor(a.copy(), requires_grad=True) for a in init]
    opt = make(optim, params)
    sch = sched(S, opt) if sched else None
    traj, lrs = [], []
    for _ in range(steps):
        for p, g in zip(params, _grad_fn([p.numpy() for p in params], c)):
            p.grad = cr.tensor(g)
        opt.step()
        if sch:
            sch.step()
        traj.append([p.numpy().copy() for p in params])
        lrs.append(opt.param_groups[0]["lr"])
    return traj, lrs


def _run_torch(torch, make, init, c, steps=STEPS, sched=None):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = make(torch.optim, params)
    sch = sched(torch.optim.lr_scheduler, opt) if sched else None
    traj, lrs = [], []
    for _ in range(steps):
        for p, g in zip(params, _grad_fn([p.detach().numpy() for p in params], c)):
            p.grad = torch.tensor(g)
        opt.step()
        if sch:
            sch.step()
        traj.append([p.detach().numpy().copy() for p in params])
        lrs.append(opt.param_groups[0]["lr"])
    return traj, lrs


OPTIMIZERS = {
    "sgd": lambda m, p: m.SGD(p, lr=0.05),
    "sgd_momentum": lambda m, p: m.SGD(p, lr=0.05, momentum=0.9),
    "sgd_dampening": lambda m, p: m.SGD(p, lr=0.05, momentum=0.9, dampening=0.3),
    "sgd_nesterov": lambda m, p: m.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "sgd_wd": lambda m, p: m.SGD(p, lr=0.05, momentum=0.5, weight_decay=0.1),
    "sgd_maximize": lambda m, p: m.SGD(p, lr=0.002, momentum=0.5, maximize=True),
    "adam": lambda m, p: m.Adam(p, lr=0.05),
    "adam_betas_eps": lambda m, p: m.Adam(p, lr=0.05, betas=(0.8, 0.95), eps=1e-3),
    "adam_amsgrad": lambda m, p: m.Adam(p, lr=0.05, amsgrad=True),
    "adam_wd": lambda m, p: m.Adam(p, lr=0.05, weight_decay=0.1),
    "adam_maximize": lambda m, p: m.Adam(p, lr=0.002, maximize=True),
    "adamw": lambda m, p: m.AdamW(p, lr=0.05),
    "adamw_amsgrad_wd": lambda m, p: m.AdamW(p, lr=0.05, weight_decay=0.3, amsgrad=True),
    "rmsprop": lambda m, p: m.RMSprop(p, lr=0.01),
    "rmsprop_centered": lambda m, p: m.RMSprop(p, lr=0.01, centered=True),
    "rmsprop_momentum_wd": lambda m, p: m.RMSprop(p, lr=0.01, momentum=0.7, weight_decay=0.1),
    "rmsprop_all": lambda m, p: m.RMSprop(p, lr=0.01, alpha=0.9, centered=True, momentum=0.5),
    "adagrad": lambda m, p: m.Adagrad(p, lr=0.1),
    "adagrad_decay_wd": lambda m, p: m.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.1),
    "adagrad_init_acc": lambda m, p: m.Adagrad(p, lr=0.1, initial_accumulator_value=0.5),
    "adagrad_eps_maximize": lambda m, p: m.Adagrad(p, lr=0.002, eps=1e-3, maximize=True),
    "rmsprop_maximize": lambda m, p: m.RMSprop(p, lr=0.001, maximize=True),
    "param_groups": lambda m, p: m.SGD([{"params": [p[0]], "lr": 0.02},
                                        {"params": [p[1]], "momentum": 0.9}], lr=0.05),
}

SCHEDULERS = {
    "step": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "exponential": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "cosine": lambda s, o: s.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "linear_warmup": lambda s, o: s.LinearLR(o, start_factor=0.1, total_iters=5),
    "linear_decay": lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=8),
    "warmup_then_cosine": lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.2, total_iters=4),
            s.CosineAnnealingLR(o, T_max=10)], milestones=[4]),
}


def _assert_same(ours, theirs):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            assert np.isfinite(x).all(), f"step {step} diverged; the test needs a smaller lr"
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6, err_msg=f"step {step}")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_trajectory_matches_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference; not installed")
    init, c = _start()
    ours, _ = _run_ours(OPTIMIZERS[name], init, c)
    theirs, _ = _run_torch(torch, OPTIMIZERS[name], init, c)
    _assert_same(ours, theirs)
    assert not np.allclose(ours[-1][0], init[0])  # it did move


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_matches_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference; not installed")
    init, c = _start(1)
    make = OPTIMIZERS["sgd_momentum"]
    ours, our_lrs = _run_ours(make, init, c, sched=SCHEDULERS[name])
    theirs, their_lrs = _run_torch(torch, make, init, c, sched=SCHEDULERS[name])
    np.testing.assert_allclose(our_lrs, their_lrs, rtol=1e-9, atol=1e-12)
    _assert_same(ours, theirs)
    assert len(set(np.round(our_lrs, 12))) > 1  # the schedule changed the lr


def test_clipping_matches_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference; not installed")
    init, c = _start(2)
    for norm_type, max_norm in [(2.0, 0.5), (1.0, 1.0), (float("inf"), 0.3), (2.0, 1e6)]:
        ours = [cr.tensor(a, requires_grad=True) for a in init]
        theirs = [torch.tensor(a, requires_grad=True) for a in init]
        for p, q, g in zip(ours, theirs, c):
            p.grad, q.grad = cr.tensor(g), torch.tensor(g)
        n1 = optim.clip_grad_norm_(ours, max_norm, norm_type)
        n2 = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
        assert n1.item() == pytest.approx(n2.item(), rel=1e-9)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9)
    optim.clip_grad_value_(ours, 0.25)
    torch.nn.utils.clip_grad_value_(theirs, 0.25)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy())
    assert max(np.abs(p.grad.numpy()).max() for p in ours) == 0.25


def test_clip_grad_norm_nonfinite_raises():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    w.grad = cr.tensor([np.nan, 1.0])
    with pytest.raises(ChainruleError, match="NaN or inf"):
        optim.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("name", ["sgd_nesterov", "adam_amsgrad", "rmsprop_all",
                                  "adagrad_decay_wd", "param_groups"])
def test_state_dict_resume_is_exact(name):
    """10 steps, state_dict into a fresh optimizer, 10 more == 20 uninterrupted steps."""
    init, c = _start(3)
    full, _ = _run_ours(OPTIMIZERS[name], init, c, steps=STEPS)
    params = [cr.tensor(a.copy(), requires_grad=True) for a in init]
    opt = OPTIMIZERS[name](optim, params)
    for _ in range(10):
        for p, g in zip(params, _grad_fn([p.numpy() for p in params], c)):
            p.grad = cr.tensor(g)
        opt.step()
    saved = opt.state_dict()
    params2 = [cr.tensor(p.numpy().copy(), requires_grad=True) for p in params]
    opt2 = OPTIMIZERS[name](optim, params2)
    opt2.load_state_dict(saved)
    for _ in range(10):
        for p, g in zip(params2, _grad_fn([p.numpy() for p in params2], c)):
            p.grad = cr.tensor(g)
        opt2.step()
    for a, b in zip(full[-1], params2):
        np.testing.assert_array_equal(a, b.numpy())


def test_scheduler_state_dict_resume():
    opt = optim.SGD([cr.zeros(2, requires_grad=True)], lr=1.0)
    sch = SCHEDULERS["warmup_then_cosine"](S, opt)
    for _ in range(6):
        sch.step()
    state = sch.state_dict()
    rest = []
    for _ in range(5):
        sch.step()
        rest.append(sch.get_last_lr()[0])
    opt2 = optim.SGD([cr.zeros(2, requires_grad=True)], lr=1.0)
    sch2 = SCHEDULERS["warmup_then_cosine"](S, opt2)
    sch2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = state["_last_lr"][0]  # the optimizer's own state carries lr
    again = []
    for _ in range(5):
        sch2.step()
        again.append(sch2.get_last_lr()[0])
    assert again == rest


def test_real_backward_step_decreases_loss():
    """The seed's 1-1-1 network: one SGD step with lr 0.5 gives w_o = 0.314477715."""
    w_h, b_h, w_o, b_o = (cr.tensor(v, dtype=cr.float64, requires_grad=True)
                          for v in (0.2, 0.1, 0.3, 0.2))
    opt = optim.SGD([w_h, b_h, w_o, b_o], lr=0.5)
    y_o = ((1.0 * w_h + b_h).sigmoid() * w_o + b_o).sigmoid()
    loss = 0.5 * (0.8 - y_o) ** 2
    loss.backward()
    opt.step()
    # the seed rounds y_h, y_o to two digits; exact arithmetic gives 0.31448...
    assert w_o.item() == pytest.approx(0.314477715, abs=2e-4)
    assert w_h.item() == pytest.approx(0.201867625, abs=1e-4)


def test_zero_grad():
    w = cr.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.grad = cr.tensor([2.0])
    opt.zero_grad(set_to_none=False)
    assert w.grad.tolist() == [0.0]
    opt.zero_grad()
    assert w.grad is None


def test_step_bumps_version_so_stale_graphs_fail():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    opt = optim.SGD([w], lr=0.1)
    w.grad = cr.tensor([1.0, 1.0])
    opt.step()
    with pytest.raises(ChainruleError, match="modified in place"):
        y.backward()


# ----- errors -----
def test_no_parameters():
    with pytest.raises(OptimizerError, match="empty parameter list"):
        optim.Adam([])
    gen = (p for p in [cr.zeros(1, requires_grad=True)])
    list(gen)
    with pytest.raises(OptimizerError, match="used up"):
        optim.SGD(gen, lr=0.1)


def test_parameter_twice():
    w = cr.zeros(2, requires_grad=True)
    with pytest.raises(OptimizerError, match="appear once"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(OptimizerError, match="parameter group 0"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    assert issubclass(OptimizerError, ValueError)


def test_bad_parameters_and_options():
    with pytest.raises(OptimizerError, match="single Tensor"):
        optim.SGD(cr.zeros(2, requires_grad=True), lr=0.1)
    with pytest.raises(OptimizerError, match="not a Tensor"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(DTypeError, match="int64"):
        optim.SGD([cr.tensor([1, 2])], lr=0.1)
    with pytest.raises(OptimizerError, match="'lr'"):
        optim.SGD([cr.zeros(1, requires_grad=True)])
    with pytest.raises(OptimizerError, match="nesterov"):
        optim.SGD([cr.zeros(1, requires_grad=True)], lr=0.1, nesterov=True)
    with pytest.raises(OptimizerError, match="betas"):
        optim.Adam([cr.zeros(1, requires_grad=True)], betas=(0.9, 1.5))
    with pytest.raises(OptimizerError, match="lr must be"):
        optim.RMSprop([cr.zeros(1, requires_grad=True)], lr=-1)


def test_load_state_dict_lists_every_problem():
    a, b = cr.zeros(2, requires_grad=True), cr.zeros(3, requires_grad=True)
    opt = optim.Adam([a, b])
    a.grad, b.grad = cr.ones(2), cr.ones(3)
    opt.step()
    state = opt.state_dict()
    other = optim.Adam([cr.zeros(5, requires_grad=True), cr.zeros(4, requires_grad=True)])
    with pytest.raises(CheckpointError) as err:
        other.load_state_dict(state)
    msg = str(err.value)
    assert "parameter 0" in msg and "parameter 1" in msg and "(5,)" in msg
    with pytest.raises(CheckpointError, match="1 parameter groups"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(state)
