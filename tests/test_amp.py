"""Mixed precision (chainrule.amp): GradScaler follows PyTorch's algorithm step for step (the
same scales, the same skipped steps, the same weights), on the CPU and on the check device;
autocast leaves every result as it is (chainrule keeps the tensors' dtypes, see the NOTE in
chainrule/amp.py) and checks its arguments as PyTorch does; a PyTorch AMP training loop runs
with only its import changed."""
import io
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import AmpError, CheckpointError, DeviceError, DTypeError
from test_devices import _host_reads

# The schedules below poison gradients with inf and nan on purpose.
pytestmark = pytest.mark.filterwarnings(
    "ignore:(invalid value|overflow) encountered:RuntimeWarning")

INF, NAN = float("inf"), float("nan")
W1 = np.array([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]], dtype=np.float32)
B1 = np.array([0.1, -0.2], dtype=np.float32)
X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 3.0], [2.0, 0.0, 1.0], [-1.0, 1.0, 0.5]],
             dtype=np.float32)
# The loss is multiplied by these, one per step: inf and nan poison the gradients; 1e34 is
# finite but overflows float32 once scaled by 2**16, so the scale must back off until it fits.
SCHEDULE = [1.0, 1.0, INF, 1.0, 1.0, 1.0, NAN, 1.0, 1e34, 1.0, 1.0, 1.0, 1.0, -2.0, 1.0, 1.0]


def _torch():
    return pytest.importorskip(
        "torch", reason="PyTorch is the reference for GradScaler's numbers: pip install torch")


def _model(lib, device="cpu"):
    model = lib.nn.Linear(3, 2)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(W1))
        model.bias.copy_(lib.tensor(B1))
    return model.to(device)


def _weights(model):
    return [p.detach().cpu().numpy().copy() for p in model.parameters()]


def _train(lib, optimizer="SGD", device="cpu", scaler_device="cpu", schedule=SCHEDULE,
           clip=None, **scaler_kw):
    """Run the schedule; per step (the scale after update, whether the step was skipped),
    and the final weights."""
    model = _model(lib, device)
    opt = (lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if optimizer == "SGD"
           else lib.optim.Adam(model.parameters(), lr=0.01))
    scaler = lib.amp.GradScaler(scaler_device, **scaler_kw)
    x = lib.tensor(X).to(device)
    trace = []
    for factor in schedule:
        opt.zero_grad()
        loss = (model(x) ** 2).mean() * factor
        scaler.scale(loss).backward()
        if clip is not None:
            scaler.unscale_(opt)
            lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
        before = _weights(model)
        scaler.step(opt)
        scaler.update()
        skipped = all(np.array_equal(a, b) for a, b in zip(before, _weights(model)))
        trace.append((scaler.get_scale(), skipped))
    return trace, _weights(model), scaler


def _assert_same_weights(mine, theirs):
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- GradScaler against PyTorch

@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_scaler_follows_pytorch_through_inf_and_nan_steps(optimizer):
    torch = _torch()
    kw = dict(init_scale=2.0 ** 16, growth_interval=3)
    mine, w_mine, _ = _train(cr, optimizer, **kw)
    theirs, w_theirs, _ = _train(torch, optimizer, **kw)
    assert mine == theirs                      # the same scales and the same skipped steps
    skipped = [i for i, (_, s) in enumerate(mine) if s]
    assert {2, 6, 8} <= set(skipped)           # inf, nan, and the overflow of 1e34 * scale
    _assert_same_weights(w_mine, w_theirs)


def test_scale_grows_after_growth_interval_good_steps():
    torch = _torch()
    mine, _, scaler = _train(cr, init_scale=4.0, growth_interval=2, schedule=[1.0] * 7)
    assert [s for s, _ in mine] == [4.0, 8.0, 8.0, 16.0, 16.0, 32.0, 32.0]
    assert scaler._get_growth_tracker() == 1
    assert mine == _train(torch, init_scale=4.0, growth_interval=2, schedule=[1.0] * 7)[0]


def test_scale_stops_growing_at_the_top_of_float32():
    torch = _torch()
    kw = dict(init_scale=2.0 ** 127, growth_interval=1, schedule=[1e-30] * 2)
    mine, _, scaler = _train(cr, **kw)
    assert mine == _train(torch, **kw)[0]
    assert [s for s, _ in mine] == [2.0 ** 127] * 2 and scaler._get_growth_tracker() == 0


def test_only_the_optimizer_with_bad_gradients_skips_and_the_scale_backs_off_once():
    torch = _torch()

    def run(lib):
        a, b = (lib.tensor([1.0, 2.0], requires_grad=True) for _ in range(2))
        opt_a, opt_b = lib.optim.SGD([a], lr=0.1), lib.optim.SGD([b], lr=0.1)
        scaler = lib.amp.GradScaler("cpu", init_scale=8.0)
        scaler.scale([(a * a).sum(), (b * INF).sum()])[0].backward()
        scaler.scale((b * INF).sum()).backward()
        scaler.step(opt_a), scaler.step(opt_b)
        scaler.update()
        return a.tolist(), b.tolist(), scaler.get_scale()
    assert run(cr) == run(torch) == ([0.800000011920929, 1.600000023841858], [1.0, 2.0], 4.0)


def test_scale_keeps_nested_lists_and_tuples():
    torch = _torch()

    def run(lib):
        out = lib.amp.GradScaler("cpu", init_scale=4.0).scale(
            [lib.tensor(1.0), (lib.tensor([2.0, 3.0]), [lib.tensor(0.5)])])
        return type(out), type(out[1]), type(out[1][1]), out[1][0].tolist(), out[1][1][0].item()
    mine, theirs = run(cr), run(torch)
    assert mine[:3] == (list, tuple, list) == theirs[:3]
    assert mine[3:] == theirs[3:] == ([8.0, 12.0], 2.0)
    assert list(cr.amp.GradScaler("cpu").scale(iter([cr.tensor(1.0)])))[0].item() == 65536.0
    with pytest.raises(AmpError, match="outputs must be a Tensor"):
        cr.amp.GradScaler("cpu").scale(3.0)


def test_unscale_then_clip_grad_norm_the_documented_recipe():
    torch = _torch()
    mine, w_mine, _ = _train(cr, clip=0.5, growth_interval=3)
    theirs, w_theirs, _ = _train(torch, clip=0.5, growth_interval=3)
    assert mine == theirs
    _assert_same_weights(w_mine, w_theirs)
    # scaling by a power of two is exact: the clipped steps equal those of an unscaled run
    good = [f for f in SCHEDULE if math.isfinite(f) and abs(f) < 1e30]
    plain, w_plain, _ = _train(cr, clip=0.5, schedule=good, enabled=False)
    scaled, w_scaled, _ = _train(cr, clip=0.5, schedule=good, growth_interval=3)
    assert not any(s for _, s in scaled)
    _assert_same_weights(w_scaled, w_plain)


def test_unscale_gives_true_gradients_in_place():
    w = cr.tensor([3.0, -1.0], requires_grad=True)
    opt = cr.optim.SGD([w], lr=0.1)
    scaler = cr.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale((w * w).sum()).backward()
    grad = w.grad
    assert grad.tolist() == [6.0 * 1024, -2.0 * 1024]
    scaler.unscale_(opt)
    assert grad.tolist() == [6.0, -2.0] and w.grad is grad


# ---------------------------------------------------------------- misuse, as PyTorch

def _one_step(lib, scaler_calls):
    w = lib.tensor([1.0], requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.1)
    scaler = lib.amp.GradScaler("cpu")
    scaler.scale(w.sum()).backward()
    for call in scaler_calls:
        getattr(scaler, call)(*(() if call == "update" else (opt,)))


@pytest.mark.parametrize("calls, message", [
    (["unscale_", "unscale_"], "unscale_\\(\\) has already been called"),
    (["step", "unscale_"], "unscale_\\(\\) is being called after step\\(\\)"),
    (["step", "step"], "step\\(\\) has already been called since the last update"),
])
def test_calls_out_of_order_raise_runtime_errors_as_pytorch(calls, message):
    torch = _torch()
    with pytest.raises(AmpError, match=message) as info:
        _one_step(cr, calls)
    assert isinstance(info.value, RuntimeError) and "scaler." in str(info.value)
    with pytest.raises(RuntimeError, match=message):
        _one_step(torch, calls)


def test_the_next_iteration_may_unscale_again_after_update():
    _one_step(cr, ["unscale_", "step", "update", "unscale_"])


def test_scaler_used_before_scale_or_without_gradients():
    w = cr.tensor([1.0], requires_grad=True)
    opt = cr.optim.SGD([w], lr=0.1)
    scaler = cr.amp.GradScaler("cpu")
    for call in (lambda: scaler.unscale_(opt), lambda: scaler.step(opt), scaler.update):
        with pytest.raises(AmpError, match="call scaler.scale\\(loss\\)"):
            call()
    scaler.scale(w.sum())                        # no backward: no gradient to check
    with pytest.raises(AmpError, match="no inf checks were recorded for this optimizer"):
        scaler.step(opt)
    with pytest.raises(AmpError, match="no inf checks were recorded prior to update"):
        scaler.update()
    with pytest.raises(AmpError, match="closure"):
        scaler.step(opt, closure=lambda: w.sum())


def test_float16_gradients_are_refused_as_in_pytorch():
    w = cr.tensor([1.0], dtype=cr.float16, requires_grad=True)
    scaler = cr.amp.GradScaler("cpu")
    scaler.scale(w.sum()).backward()
    with pytest.raises(AmpError, match="float16 gradients") as info:
        scaler.step(cr.optim.SGD([w], lr=0.1))
    assert isinstance(info.value, ValueError)   # PyTorch's type


def test_bad_factors_and_new_scale():
    with pytest.raises(AmpError, match="growth_factor must be > 1.0"):
        cr.amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(AmpError, match="backoff_factor must be < 1.0"):
        cr.amp.GradScaler("cpu", backoff_factor=1.5)
    cr.amp.GradScaler("cpu", growth_factor=1.0, enabled=False)   # unchecked when off, as PyTorch
    scaler = cr.amp.GradScaler("cpu")
    scaler.scale(cr.tensor(1.0))
    scaler.update(cr.tensor([32.0]))
    assert scaler.get_scale() == 32.0
    with pytest.raises(AmpError, match="new_scale must be a float"):
        scaler.update(cr.tensor([1.0, 2.0]))


# ---------------------------------------------------------------- disabled: a pass-through

def test_disabled_scaler_is_a_pass_through():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = cr.optim.SGD([w], lr=0.5)
    scaler = cr.amp.GradScaler("cpu", enabled=False)
    loss = (w * INF).sum()
    assert scaler.scale(loss) is loss and not scaler.is_enabled()
    loss.backward()
    scaler.unscale_(opt)
    assert w.grad.tolist() == [INF, INF]         # nothing unscaled, nothing checked
    assert scaler.step(opt) is None and w.tolist() == [-INF, -INF]    # the step is not skipped
    scaler.update()
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    scaler.load_state_dict({})
    assert scaler._get_growth_tracker() == 0


def test_step_returns_what_the_optimizer_step_returns():
    class Counting(cr.optim.SGD):
        def step(self, closure=None, tag=None):
            super().step()
            return tag
    for enabled in (True, False):
        w = cr.tensor([1.0], requires_grad=True)
        scaler = cr.amp.GradScaler("cpu", enabled=enabled)
        scaler.scale(w.sum()).backward()
        assert scaler.step(Counting([w], lr=0.1), tag="ran") == "ran"


def test_cuda_scaler_without_cuda_warns_and_disables_itself_as_pytorch():
    if cr.cuda.is_available():
        pytest.skip("CUDA is available here: the scaler stays enabled")
    for make in (lambda: cr.amp.GradScaler(), lambda: cr.amp.GradScaler("cuda"),
                 lambda: cr.cuda.amp.GradScaler()):
        with pytest.warns(UserWarning, match="CUDA is not available: disabling") as record:
            scaler = make()
        assert not scaler.is_enabled() and scaler.get_scale() == 1.0
        assert record[0].filename == __file__           # points at the caller's line


# ---------------------------------------------------------------- checkpoints

def test_state_dict_round_trip_continues_the_same_run():
    torch = _torch()
    first, _, scaler = _train(cr, schedule=SCHEDULE[:9], growth_interval=3)
    state = scaler.state_dict()
    t_state = _train(torch, schedule=SCHEDULE[:9], growth_interval=3)[2].state_dict()
    assert state == t_state and set(state) == {"scale", "growth_factor", "backoff_factor",
                                               "growth_interval", "_growth_tracker"}
    buf = io.BytesIO()
    cr.save(state, buf)
    buf.seek(0)
    fresh = cr.amp.GradScaler("cpu")
    fresh.load_state_dict(cr.load(buf))
    assert fresh.state_dict() == state
    fresh.scale(cr.tensor(1.0))                     # the loaded scale is the one used
    assert fresh.get_scale() == state["scale"]
    assert fresh._get_growth_tracker() == state["_growth_tracker"] == 0   # step 8 was skipped


def test_loading_an_empty_or_partial_state_dict():
    with pytest.raises(AmpError, match="saved from a disabled GradScaler") as info:
        cr.amp.GradScaler("cpu").load_state_dict({})
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(CheckpointError, match="missing keys: growth_factor"):
        cr.amp.GradScaler("cpu").load_state_dict({"scale": 2.0})


# ---------------------------------------------------------------- the check device

@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_check_device_gives_the_cpus_numbers(optimizer):
    cpu_trace, cpu_weights, _ = _train(cr, optimizer, growth_interval=3)
    trace, weights, _ = _train(cr, optimizer, device="check", scaler_device="check",
                               growth_interval=3)
    assert trace == cpu_trace
    for a, b in zip(weights, cpu_weights):
        np.testing.assert_array_equal(a, b)
    clipped = _train(cr, device="check", clip=0.5, growth_interval=3)   # a "cpu" scaler works
    assert clipped[0] == _train(cr, clip=0.5, growth_interval=3)[0]


def test_a_scaled_step_reads_the_device_once():
    model = _model(cr, "check")
    opt = cr.optim.SGD(model.parameters(), lr=0.05)
    scaler = cr.amp.GradScaler("check")
    x = cr.tensor(X).to("check")
    for factor in (1.0, INF, 1.0):
        with _host_reads() as reads:
            opt.zero_grad()
            out = model(x)
            scaler.scale((out * out).mean() * factor).backward()
            scaler.step(opt)
            scaler.update()
        assert reads == ["__bool__"]             # the inf/nan check, and nothing else


# ---------------------------------------------------------------- autocast

def _forward(x, w):
    return cr.nn.functional.softmax(x @ w, dim=-1).sum(0)


def test_autocast_as_context_manager_and_decorator_leaves_results_alone():
    x, w = cr.tensor(X), cr.tensor(W1.T.copy(), requires_grad=True)
    plain = _forward(x, w)
    with cr.autocast(device_type="cpu", dtype=cr.float16):
        inside = _forward(x, w)
        with cr.amp.autocast("cuda", enabled=False):    # nested, as in PyTorch's examples
            nested = _forward(x, w)
    decorated = cr.autocast("cuda", dtype=cr.float16)(_forward)(x, w)
    assert decorated.__class__ is cr.Tensor and cr.autocast("cuda")(_forward).__name__ == "_forward"
    for y in (inside, nested, decorated):
        assert y.dtype == cr.float32
        np.testing.assert_array_equal(y.numpy(), plain.numpy())
    inside.sum().backward()
    grad = w.grad.numpy().copy()
    w.grad = None
    plain.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), grad)


def test_autocast_names_and_queries():
    assert cr.autocast is cr.amp.autocast
    assert issubclass(cr.cuda.amp.autocast, cr.amp.autocast)
    with cr.autocast("cuda", dtype="bfloat16") as ctx:    # accepted, never converted to
        assert ctx.fast_dtype == "bfloat16"
        assert cr.is_autocast_enabled() is False and not cr.amp.is_autocast_enabled("cuda")
    assert cr.autocast("cuda").fast_dtype == cr.float16
    assert cr.autocast("cpu").fast_dtype == "bfloat16"     # PyTorch's defaults
    with cr.cuda.amp.autocast():
        assert (cr.ones(2) + 1).dtype == cr.float32


def test_autocast_checks_its_arguments_as_pytorch():
    torch = _torch()
    for lib, device_error in ((cr, AmpError), (torch, ValueError)):
        with pytest.raises(device_error, match="device_type`? of type"):
            lib.autocast(lib.device("cpu"))
        with pytest.raises(RuntimeError):
            lib.autocast("foo")
        with pytest.warns(UserWarning, match="autocast"):
            lib.autocast("cpu", dtype=lib.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lib.autocast("cpu", dtype=lib.float16)
        with pytest.raises(TypeError, match="callable"):
            lib.autocast("cpu")(3)
    with pytest.raises(DeviceError, match="unsupported device_type 'cuda:0'"):
        cr.autocast("cuda:0")
    with pytest.raises(DTypeError, match="is not a dtype"):
        cr.autocast("cuda", dtype="nonsense")
    assert cr.autocast("cpu", dtype=torch.bfloat16).fast_dtype == "bfloat16"
    assert cr.autocast("cuda", dtype=torch.float16).fast_dtype == cr.float16


def test_custom_fwd_and_custom_bwd_change_nothing():
    def forward(ctx, x):
        return x * 2
    assert cr.amp.custom_fwd(forward, device_type="cuda") is forward
    assert cr.amp.custom_fwd(device_type="cpu", cast_inputs=cr.float32)(forward) is forward
    assert cr.amp.custom_bwd(device_type="cuda")(forward) is forward
    assert cr.cuda.amp.custom_fwd(cast_inputs=cr.float32)(forward) is forward
    assert cr.cuda.amp.custom_bwd(forward) is forward
    with pytest.raises(AmpError, match="device_type of type str"):
        cr.amp.custom_fwd(forward, device_type=None)


# ---------------------------------------------------------------- imports

def test_amp_loads_on_first_use_and_cuda_amp_imports_as_pytorchs():
    code = ("import sys, chainrule as cr; cr.cuda; cr.cuda.amp\n"
            "assert 'chainrule.amp' not in sys.modules, 'import chainrule imported amp'\n"
            "from chainrule.cuda.amp import GradScaler, autocast, custom_fwd, custom_bwd\n"
            "import chainrule.cuda.amp as m\n"
            "assert m is cr.cuda.amp and autocast is cr.cuda.amp.autocast\n"
            "assert cr.amp.GradScaler and cr.autocast is cr.amp.autocast\n"
            "assert 'cupy' not in sys.modules or cr.cuda.is_available()\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        cr.cuda.amp.nothing


# ---------------------------------------------------------------- a PyTorch AMP loop, unchanged

LOOP = '''
import {lib} as torch
from {lib} import nn
import {lib}.nn.functional as F

device = "cuda" if torch.cuda.is_available() else "cpu"
model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).to(device)
with torch.no_grad():
    for p, value in zip(model.parameters(), WEIGHTS):
        p.copy_(torch.tensor(value))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
x, y = torch.tensor(X).to(device), torch.tensor(Y).to(device)
losses = []
for epoch in range(6):
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=torch.float16, enabled=use_amp):
        output = model(x)
        loss = F.mse_loss(output, y)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    scaler.step(opt)
    scaler.update()
    losses.append(loss.item())
'''


def _run_loop(lib_name, use_amp):
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=s).astype(np.float32) for s in [(8, 3), (8,), (1, 8), (1,)]]
    namespace = {"WEIGHTS": weights, "X": X, "Y": X[:, :1] * 2.0, "use_amp": use_amp}
    exec(LOOP.format(lib=lib_name), namespace)
    return namespace["losses"], [p.detach().cpu().numpy() for p in
                                 namespace["model"].parameters()]


def test_a_pytorch_amp_training_loop_runs_with_only_the_import_changed():
    _torch()
    losses, weights = _run_loop("chainrule", use_amp=False)
    with warnings.catch_warnings():      # PyTorch deprecates the torch.cuda.amp spelling
        warnings.simplefilter("ignore", FutureWarning)
        t_losses, t_weights = _run_loop("torch", use_amp=False)
    np.testing.assert_allclose(losses, t_losses, rtol=1e-5)
    _assert_same_weights(weights, t_weights)
    assert losses[-1] < losses[0]
    with warnings.catch_warnings(record=True) as record:   # CUDA's scaler is off without CUDA
        warnings.simplefilter("always")
        amp_losses, amp_weights = _run_loop("chainrule", use_amp=True)
    if not cr.cuda.is_available():
        assert any("CUDA is not available" in str(w.message) for w in record)
    np.testing.assert_allclose(amp_losses, losses, rtol=1e-6)
    _assert_same_weights(amp_weights, weights)
