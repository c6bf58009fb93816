"""The default device (PyTorch 2's `torch.set_default_device` and `with torch.device(...)`),
tested on the "check" device, so it runs on every CPU machine: creation functions and layers
given no device= make their tensors there, with the CPU's numbers for the same seed; the
context manager restores the device before it (on exit, on an exception, nested); the
setting is per thread; "cuda" without CuPy fails at the first tensor with the install line.
"""
import re
import sys
import threading

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import backend, get_default_device, nn, set_default_device
from chainrule.errors import DeviceError

DEV = "check"
CPU = cr.device("cpu")


@pytest.fixture(autouse=True)
def _cpu_default():
    """Every test starts, and leaves the process, on the CPU default."""
    set_default_device(None)
    yield
    set_default_device(None)


def host(t):
    return t.cpu().numpy()


def on_check(t):
    return t.device.type == DEV


# ---------------------------------------------------------------- the setting

def test_the_default_is_the_cpu_and_none_resets_to_it():
    assert get_default_device() == CPU and isinstance(get_default_device(), cr.device)
    set_default_device(DEV)
    assert get_default_device() == cr.device(DEV)
    set_default_device(None)
    assert get_default_device() == CPU and cr.zeros(1).device == CPU
    set_default_device(cr.device(DEV))
    set_default_device("cpu")
    assert get_default_device() == CPU and cr.zeros(1).device == CPU


def test_a_name_that_is_no_device_is_refused_when_set():
    with pytest.raises(DeviceError, match="'tpu' is not a device"):
        set_default_device("tpu")
    with pytest.raises(DeviceError, match="'cpu:1' is not a device"):
        set_default_device("cpu:1")
    assert get_default_device() == CPU


# ---------------------------------------------------------------- creation

CREATIONS = {
    "tensor": lambda: cr.tensor([[1.0, 2.0], [3.0, 4.0]]),
    "tensor of numpy": lambda: cr.tensor(np.arange(3.0)),
    "tensor of a cpu tensor": lambda: cr.tensor(cr.ones(2)),
    "zeros": lambda: cr.zeros(2, 3),
    "ones": lambda: cr.ones((2,), dtype=cr.int64),
    "full": lambda: cr.full((2, 2), 7.5),
    "empty": lambda: cr.empty(3),
    "arange": lambda: cr.arange(5),
    "arange float": lambda: cr.arange(0.0, 1.0, 0.25),
    "linspace": lambda: cr.linspace(0, 1, 7),
    "eye": lambda: cr.eye(3, 2),
    "rand": lambda: cr.rand(3, 4),
    "randn": lambda: cr.randn(3, 4, dtype=cr.float64),
    "randint": lambda: cr.randint(0, 10, (6,)),
    "randperm": lambda: cr.randperm(8),
    "normal": lambda: cr.normal(2.0, 0.5, size=(4,)),
    "generator": lambda: cr.randn(3, generator=cr.Generator().manual_seed(5)),
    "as_tensor list": lambda: cr.as_tensor([1, 2, 3]),
    "as_tensor numpy": lambda: cr.as_tensor(np.ones(2, np.float32)),
    "as_tensor cpu tensor": lambda: cr.as_tensor(cr.ones(2)),
}


@pytest.mark.parametrize("name", sorted(CREATIONS))
def test_creation_without_device_uses_the_default_with_the_cpus_values(name):
    make = CREATIONS[name]
    cr.manual_seed(3)
    cpu = make()
    set_default_device(DEV)
    cr.manual_seed(3)        # random draws are made on the host: the same on every device
    dev = make()
    assert on_check(dev) and cpu.device == CPU
    assert dev.dtype == cpu.dtype and dev.shape == cpu.shape
    np.testing.assert_array_equal(host(dev), cpu.numpy())


def test_an_explicit_device_wins_over_the_default():
    set_default_device(DEV)
    assert cr.zeros(2, device="cpu").device == CPU
    assert cr.tensor([1.0], device="cpu").device == CPU
    assert cr.as_tensor(cr.ones(2, device="cpu"), device="cpu").device == CPU
    assert nn.Linear(2, 2, device="cpu").weight.device == CPU


@pytest.mark.parametrize("fn", [cr.zeros_like, cr.ones_like, cr.rand_like, cr.randn_like,
                                cr.empty_like, lambda t: cr.full_like(t, 3.0)])
def test_like_functions_still_follow_their_tensor(fn):
    cpu_t, check_t = cr.ones(2, 3), cr.ones(2, 3, device=DEV)
    set_default_device(DEV)
    assert fn(cpu_t).device == CPU
    set_default_device(None)
    assert on_check(fn(check_t))


def test_from_numpy_stays_on_the_host_and_tensors_follow_their_inputs():
    set_default_device(DEV)
    a = np.zeros(2)
    t = cr.from_numpy(a)
    a[0] = 5
    assert t.device == CPU and t.tolist() == [5.0, 0.0]              # still shares memory
    assert cr.multinomial(cr.tensor([0.0, 1.0], device="cpu"), 1).device == CPU
    assert cr.normal(cr.zeros(3, device="cpu"), 1.0).device == CPU
    x = cr.ones(2, device="cpu")                                      # methods follow x
    assert x.new_zeros(3).device == CPU and (x + 1).device == CPU


def test_a_device_tensor_is_copied_to_the_default_and_kept_while_it_is_the_cpu():
    t = cr.tensor([1.0, 2.0], device=DEV)
    assert on_check(cr.tensor(t)) and on_check(cr.as_tensor(t))     # CPU default: stays
    assert cr.as_tensor(t) is t
    set_default_device(DEV)
    copy = cr.tensor(t)
    copy.add_(1.0)
    assert on_check(copy) and host(t).tolist() == [1.0, 2.0]


# ---------------------------------------------------------------- layers

LAYERS = {
    "linear": lambda: nn.Linear(3, 2),
    "linear no bias": lambda: nn.Linear(3, 2, bias=False),
    "conv": lambda: nn.Conv2d(1, 2, 3),
    "batchnorm1d": lambda: nn.BatchNorm1d(3),
    "batchnorm2d": lambda: nn.BatchNorm2d(3),
    "layernorm": lambda: nn.LayerNorm(3),
    "embedding": lambda: nn.Embedding(4, 2, padding_idx=1),
    "rnn": lambda: nn.RNN(2, 3),
    "lstm": lambda: nn.LSTM(2, 3, num_layers=2),
    "sequential": lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_without_device_are_made_on_the_default_as_on_the_cpu(name):
    cr.manual_seed(0)
    cpu = LAYERS[name]()
    set_default_device(DEV)
    cr.manual_seed(0)
    layer = LAYERS[name]()
    state = layer.state_dict()
    assert state and all(on_check(v) for v in state.values())        # parameters and buffers
    assert all(on_check(b) for b in layer.buffers())
    for k, v in cpu.state_dict().items():
        assert v.device == CPU
        np.testing.assert_array_equal(host(state[k]), v.numpy(), err_msg=k)


def test_a_custom_module_made_from_creation_functions_lands_on_the_default():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(cr.randn(3))
            self.register_buffer("count", cr.zeros((), dtype=cr.int64))

    with cr.device(DEV):
        m = Scale()
    assert on_check(m.w) and on_check(m.count) and m.w.requires_grad


# ---------------------------------------------------------------- the context manager

def test_with_device_sets_the_default_inside_and_restores_it_after():
    with cr.device(DEV) as d:
        assert d == cr.device(DEV) and get_default_device() == d
        assert on_check(cr.zeros(2)) and on_check(nn.Linear(2, 2).weight)
    assert get_default_device() == CPU and cr.zeros(2).device == CPU


def test_with_device_restores_on_an_exception():
    with pytest.raises(ZeroDivisionError):
        with cr.device(DEV):
            1 / 0
    assert get_default_device() == CPU
    set_default_device(DEV)
    with pytest.raises(KeyError):
        with cr.device("cpu"):
            assert get_default_device() == CPU
            raise KeyError("x")
    assert get_default_device() == cr.device(DEV)


def test_with_device_nests_and_the_same_object_reenters():
    check = cr.device(DEV)
    with check:
        with cr.device("cpu"):
            assert cr.zeros(1).device == CPU
            with check:
                assert on_check(cr.zeros(1))
            assert get_default_device() == CPU
        assert get_default_device() == check
    assert get_default_device() == CPU


def test_set_default_device_inside_a_block_is_undone_at_its_end():
    with cr.device(DEV):
        set_default_device("cpu")
        assert cr.zeros(1).device == CPU
    assert get_default_device() == CPU            # the device before the block, as PyTorch
    set_default_device(DEV)
    with cr.device("cpu"):
        set_default_device(None)
    assert get_default_device() == cr.device(DEV)


def test_entering_a_bad_device_changes_nothing():
    set_default_device(DEV)
    with pytest.raises(DeviceError):
        with cr.device("cpu", 1):
            pass
    assert get_default_device() == cr.device(DEV)
    with cr.device("cpu"):
        pass
    assert get_default_device() == cr.device(DEV)   # the stack was not left with a stray entry


# ---------------------------------------------------------------- threads

def _in_thread(fn):
    out, errors = [], []

    def run():
        try:
            out.append(fn())
        except BaseException as exc:   # noqa: BLE001 - reported in the main thread
            errors.append(exc)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def test_the_default_is_per_thread():
    set_default_device(DEV)
    # a new thread starts on the CPU, whatever the main thread set
    assert _in_thread(lambda: (get_default_device(), cr.zeros(1).device)) == (CPU, CPU)

    def sets_its_own():
        set_default_device(DEV)
        return cr.zeros(1).device.type
    set_default_device(None)
    assert _in_thread(sets_its_own) == DEV
    assert get_default_device() == CPU and cr.zeros(1).device == CPU   # nothing leaked


def test_one_device_object_used_as_a_block_by_two_threads_at_once():
    check, barrier, seen = cr.device(DEV), threading.Barrier(2), {}

    def worker(name, outer):
        with outer:
            with check:
                barrier.wait()         # both threads inside `with check` at the same time
                seen[name, "in"] = cr.zeros(1).device.type
                barrier.wait()
            seen[name, "out"] = get_default_device().type

    threads = [threading.Thread(target=worker, args=("a", cr.device("cpu"))),
               threading.Thread(target=worker, args=("b", cr.device(DEV)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {("a", "in"): DEV, ("b", "in"): DEV, ("a", "out"): "cpu", ("b", "out"): DEV}
    assert get_default_device() == CPU


# ---------------------------------------------------------------- a whole training step

def _train(steps=4):
    """Data, model and optimizer made with no device=; the losses and final state."""
    cr.manual_seed(0)
    X, y = cr.randn(48, 8), cr.randint(0, 3, (48,))
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(16, 3))
    opt = cr.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for i in range(steps):
        xb, yb = X[i * 12:(i + 1) * 12], y[i * 12:(i + 1) * 12]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb) + 0.01 * (model[0].weight ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    device = {p.device for p in model.parameters()} | {X.device, loss.device}
    return losses, {k: host(v) for k, v in model.state_dict().items()}, device


def test_a_training_step_made_under_with_device_equals_the_cpu_run():
    with cr.num_threads(1):    # one BLAS summation order for both runs
        want = _train()
        with cr.device(DEV):
            got = _train()
    assert want[2] == {CPU} and got[2] == {cr.device(DEV, 0)}
    assert got[0] == want[0] and want[0][-1] < want[0][0]
    assert sorted(got[1]) == sorted(want[1])
    for k in want[1]:          # weights, and BatchNorm's running statistics
        np.testing.assert_array_equal(got[1][k], want[1][k], err_msg=k)


# ---------------------------------------------------------------- cuda without CuPy

INSTALL = re.escape("pip install 'chainrule[cuda]'")


@pytest.fixture
def no_cupy(monkeypatch):
    """CuPy not importable and the cuda kind not loaded (on a GPU machine it may be)."""
    monkeypatch.setattr(backend, "_KINDS", {k: v for k, v in backend._KINDS.items()
                                            if k != "cuda"})
    monkeypatch.setattr(backend, "_BY_TYPE", dict(backend._BY_TYPE))
    monkeypatch.setattr(backend, "ARRAY_TYPES", backend.ARRAY_TYPES)
    monkeypatch.setitem(sys.modules, "cupy", None)
    return monkeypatch


def test_cuda_default_without_cupy_fails_at_the_first_tensor_with_the_install_line(no_cupy):
    # NOTE: as PyTorch, setting it only names the device; using it loads CuPy
    set_default_device("cuda")
    assert get_default_device() == cr.device("cuda")
    for make in (lambda: cr.zeros(2), lambda: cr.tensor([1.0]), lambda: cr.randn(2),
                 lambda: cr.as_tensor([1.0]), lambda: nn.Linear(2, 2)):
        with pytest.raises(DeviceError, match=INSTALL):
            make()
    with pytest.raises(DeviceError, match=rf"^zeros \(on the default device.*{INSTALL}"):
        cr.zeros(2)
    with pytest.raises(DeviceError, match=INSTALL):
        with cr.device("cuda:0"):
            cr.ones(1)
    assert get_default_device() == cr.device("cuda")
    set_default_device(None)
    assert cr.zeros(2).device == CPU
