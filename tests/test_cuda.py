"""CUDA through CuPy (docs/gpu.md).

Everywhere: asking for "cuda" without CuPy or without a usable GPU is a DeviceError that says
how to get one, `import chainrule` never imports CuPy, and cr.cuda answers without raising.

On a GPU only (skipped elsewhere, with the reason shown by `pytest -rs`): every primitive's
values and gradients on CUDA equal the CPU's (the samples of tests/primitive_specs.py, in
float64), digits models train to the same numbers on both, and the device errors name the
devices. scripts/gpu_check.sh runs them on a lent GPU machine.
"""
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import backend, nn
from chainrule.errors import DeviceError

from primitive_specs import SPECS, all_samples, sample_id
from test_device_generic import _run, _tensors_on, training_step

DEVICE = "cuda"
INSTALL = re.escape("pip install 'chainrule[cuda]'")
gpu = pytest.mark.skipif(
    not cr.cuda.is_available(),
    reason="no CUDA device / CuPy here: the GPU tests run where a GPU is lent "
           "(scripts/gpu_check.sh); pip install 'chainrule[cuda]' on a machine with one")


# ---------------------------------------------------------------- everywhere

def test_import_chainrule_does_not_import_cupy():
    code = ("import sys, chainrule as cr; cr.cuda; cr.device('cuda:1'); "
            "assert 'cupy' not in sys.modules, 'import chainrule imported cupy'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def unloaded(monkeypatch):
    """The cuda kind not loaded yet (on a GPU machine it is), so the next use loads it again
    under the test's fake CuPy; the registry is put back afterwards."""
    monkeypatch.setattr(backend, "_KINDS", {k: v for k, v in backend._KINDS.items()
                                            if k != "cuda"})
    monkeypatch.setattr(backend, "_BY_TYPE", dict(backend._BY_TYPE))
    monkeypatch.setattr(backend, "ARRAY_TYPES", backend.ARRAY_TYPES)
    return monkeypatch


def _fake_cupy(count):
    """A CuPy that imports but whose runtime finds `count` devices (or raises `count`)."""
    def get_device_count():
        if isinstance(count, Exception):
            raise count
        return count
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=get_device_count))
    return cupy


def _cuda_requests():
    x = cr.ones(2)
    return {"cr.tensor": lambda: cr.tensor([1.0], device="cuda"),
            "cr.zeros": lambda: cr.zeros(2, device="cuda:0"),
            "x.to": lambda: x.to("cuda"), "x.cuda": lambda: x.cuda(),
            "Module.to": lambda: nn.Linear(2, 2).to("cuda"),
            "cr.cuda.synchronize": lambda: cr.cuda.synchronize()}


def _assert_unavailable():
    assert not cr.cuda.is_available()
    assert cr.cuda.device_count() == 0 and cr.cuda.memory_allocated() == 0


def test_cuda_without_cupy_gives_the_install_line(unloaded):
    unloaded.setitem(sys.modules, "cupy", None)     # `import cupy` fails, as when not installed
    with pytest.raises(DeviceError, match=rf"^x\.to: .*CuPy, which is not installed.*{INSTALL}"):
        backend.check_device("cuda", "x.to")
    for request in _cuda_requests().values():
        with pytest.raises(DeviceError, match=INSTALL):
            request()
    _assert_unavailable()


@pytest.mark.parametrize("count,says", [
    (RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
     r"no CUDA device is usable \(cudaErrorNoDevice"),
    (RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient"),
     r"no CUDA device is usable .*driver"),
    (0, "finds no CUDA device")], ids=["no device", "old driver", "zero devices"])
def test_cuda_without_a_usable_gpu_says_so(unloaded, count, says):
    unloaded.setitem(sys.modules, "cupy", _fake_cupy(count))
    with pytest.raises(DeviceError, match=rf"^tensor: CuPy is installed but {says}"):
        backend.kind("cuda", "tensor")
    for request in _cuda_requests().values():
        with pytest.raises(DeviceError, match="CuPy is installed but"):
            request()
    _assert_unavailable()


def test_cuda_functions_refuse_other_devices():
    with pytest.raises(DeviceError, match="'cpu' is not a CUDA device"):
        cr.cuda.set_device("cpu")


def test_cuda_manual_seed_seeds_the_host_generator():
    """Random numbers for every device are drawn on the host (docs/gpu.md)."""
    cr.cuda.manual_seed(5)
    first = cr.randn(3).tolist()
    cr.manual_seed(5)
    assert cr.randn(3).tolist() == first
    cr.cuda.manual_seed_all(5)
    assert cr.randn(3).tolist() == first


# ---------------------------------------------------------------- on a GPU: the basics

@gpu
def test_round_trips_and_device_attributes():
    x = cr.tensor([[1.0, 2.0]], device=DEVICE)
    assert x.device == cr.device("cuda", 0) and str(x.device) == "cuda:0" and x.is_cuda
    assert x.to(DEVICE) is x and "device='cuda:0'" in repr(x)
    back = x.cpu()
    assert back.device == cr.device("cpu") and back.tolist() == [[1.0, 2.0]]
    assert x.tolist() == [[1.0, 2.0]] and x.sum().item() == 3.0   # values copied for display
    y = cr.tensor([3.0, 4.0]).cuda()
    assert y.device.type == "cuda" and (y * 2).cpu().tolist() == [6.0, 8.0]
    assert cr.ones(2, device=DEVICE).dtype == cr.float32


@gpu
def test_random_draws_are_the_same_on_both_devices():
    cr.manual_seed(3)
    on_gpu = cr.randn(5, device=DEVICE)
    drop = nn.Dropout(0.5)(cr.ones(8, device=DEVICE))
    cr.manual_seed(3)
    assert cr.randn(5).tolist() == on_gpu.cpu().tolist()
    assert nn.Dropout(0.5)(cr.ones(8)).tolist() == drop.cpu().tolist()


@gpu
def test_device_queries():
    assert cr.cuda.device_count() >= 1 and cr.cuda.current_device() == 0
    assert isinstance(cr.cuda.get_device_name(0), str) and cr.cuda.get_device_name()
    big = cr.zeros(1 << 20, device=DEVICE)
    cr.cuda.synchronize()
    cr.cuda.set_device(0)
    assert cr.cuda.memory_allocated() >= big.numel() * 4
    with pytest.raises(DeviceError, match="does not exist"):
        cr.zeros(2, device=f"cuda:{cr.cuda.device_count()}")


@gpu
def test_mixing_cpu_and_cuda_names_both_devices():
    a, b = cr.ones(2, 2, device=DEVICE), cr.ones(2, 2)
    for op in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: cr.where(a > 0, a, b),
               lambda: nn.Linear(2, 2)(a)):
        with pytest.raises(DeviceError) as info:
            op()
        assert "cuda:0" in str(info.value) and "cpu" in str(info.value)


@gpu
def test_numpy_of_a_cuda_tensor_says_call_cpu_first():
    x = cr.ones(2, device=DEVICE)
    with pytest.raises(DeviceError, match=re.escape(".cpu()")):
        x.numpy()
    assert x.cpu().numpy().tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- on a GPU: every primitive

def _derivatives(sample, device, second_order):
    """The sample's output, gradients and (second_order) second derivatives on `device`, as
    host arrays: the check-device tests' run (tests/test_device_generic.py), on CUDA."""
    saved = cr.tensor
    if device != "cpu":
        cr.tensor = _tensors_on(device)     # the tensors a sample makes itself, on the device
    try:
        run = _run(sample, device, second_order)
    finally:
        cr.tensor = saved
    found = [run["out"]] + run["grads"] + run.get("firsts", []) + run["grads2"]
    return [None if t is None else t.cpu().numpy() for t in found]


def _assert_same(name, got, want):
    assert len(got) == len(want), name
    for i, (g, w) in enumerate(zip(got, want)):
        assert (g is None) == (w is None), f"{name}: result {i} is None on one device only"
        if w is not None:
            tol = 1e-10 if w.dtype == np.float64 else 1e-5
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"{name}: result {i}")


SAMPLES = all_samples()


@gpu
@pytest.mark.parametrize("item", SAMPLES, ids=[sample_id(i) for i in SAMPLES])
def test_primitive_on_cuda_equals_cpu(item):
    name, sample = item
    second = SPECS[name].second_order     # as tests/test_primitives.py gradgradchecks
    _assert_same(sample_id(item), _derivatives(sample, DEVICE, second),
                 _derivatives(sample, "cpu", second))


# ---------------------------------------------------------------- on a GPU: training

def _mlp():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def _cnn():   # examples/cnn_digits.py's network
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def _train(make, optimizer, flatten, dtype, device, epochs=3, batch=64):
    """Losses per epoch and the final weights (host arrays) of `epochs` in a fixed order."""
    X, y = cr.data.load_digits(flatten=flatten)
    cr.manual_seed(0)
    model = make().to(dtype)
    weights = list(model.parameters())
    model.to(device)
    assert all(p is w for p, w in zip(model.parameters(), weights))   # moved in place
    opt = optimizer(model.parameters())
    X, y = X.to(dtype).to(device), y.to(device)
    losses = []
    for _ in range(epochs):
        for i in range(0, len(X), batch):
            opt.zero_grad()
            loss = F.cross_entropy(model(X[i:i + batch]), y[i:i + batch])
            loss.backward()
            opt.step()
        losses.append(loss.item())
    assert all(p.device.type == cr.device(device).type for p in model.parameters())
    return losses, {k: v.cpu().numpy() for k, v in model.state_dict().items()}


TRAINING = {
    "mlp sgd float32": (_mlp, lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9), True,
                        cr.float32, 2e-5),   # float32 vs float64 runs differ by ~5e-7
    "mlp adam float64": (_mlp, lambda ps: cr.optim.Adam(ps, lr=3e-3), True, cr.float64, 1e-8),
    "cnn adam float64": (_cnn, lambda ps: cr.optim.Adam(ps, lr=3e-3), False, cr.float64, 1e-8),
}


@gpu
@pytest.mark.parametrize("case", sorted(TRAINING))
def test_digits_training_on_cuda_matches_cpu(case):
    make, optimizer, flatten, dtype, tol = TRAINING[case]
    losses, weights = _train(make, optimizer, flatten, dtype, DEVICE)
    cpu_losses, cpu_weights = _train(make, optimizer, flatten, dtype, "cpu")
    np.testing.assert_allclose(losses, cpu_losses, rtol=tol, atol=tol)
    assert losses[-1] < losses[0]
    for k in cpu_weights:
        np.testing.assert_allclose(weights[k], cpu_weights[k], rtol=tol, atol=tol, err_msg=k)


@gpu
def test_compiled_step_on_cuda_matches_eager():
    X, y = cr.data.load_digits()
    X, y = X[:128].double().to(DEVICE), y[:128].to(DEVICE)

    def make():
        cr.manual_seed(0)
        model = _mlp().double().to(DEVICE)
        return training_step(model, cr.optim.SGD(model.parameters(), lr=0.1))
    eager, compiled = make(), cr.compile(make())
    for _ in range(4):
        want, got = eager(X, y).item(), compiled(X, y).item()
        assert abs(got - want) <= 1e-10 * abs(want)
    assert compiled.stats["replays"] == 2
