"""Devices outside the compute core, tested on the "check" device (NumPy arrays that refuse
host-only calls as CuPy does, chainrule.devices.check), so they run on every CPU machine and
in CI: creation functions with device=, Module.to / .cuda / .cpu, optimizers and clipping,
checkpoints with map_location, explain, the data loader and train.fit(device=).

The check device computes with NumPy underneath, so everything here must give exactly the
CPU's numbers: any difference is code that took another path on a device.
"""
import contextlib
import io

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.errors import DeviceError

DEV = "check"


def host(t):
    return t.cpu().numpy()


def on_check(t):
    return t.device.type == DEV


# ---------------------------------------------------------------- creation

CREATIONS = {
    "tensor": lambda d: cr.tensor([[1.0, 2.0], [3.0, 4.0]], device=d),
    "tensor f64": lambda d: cr.tensor([0.1, 0.2], dtype=cr.float64, device=d),
    "zeros": lambda d: cr.zeros(2, 3, device=d),
    "ones": lambda d: cr.ones((2,), dtype=cr.int64, device=d),
    "full": lambda d: cr.full((2, 2), 7.5, device=d),
    "empty": lambda d: cr.empty(3, device=d),
    "arange": lambda d: cr.arange(5, device=d),
    "arange float": lambda d: cr.arange(0.0, 1.0, 0.25, device=d),
    "linspace": lambda d: cr.linspace(0, 1, 7, device=d),
    "eye": lambda d: cr.eye(3, 2, device=d),
    "rand": lambda d: cr.rand(3, 4, device=d),
    "randn": lambda d: cr.randn(3, 4, dtype=cr.float64, device=d),
    "randint": lambda d: cr.randint(0, 10, (6,), device=d),
    "randperm": lambda d: cr.randperm(8, device=d),
    "normal": lambda d: cr.normal(2.0, 0.5, size=(4,), device=d),
    "generator": lambda d: cr.randn(3, generator=cr.Generator().manual_seed(5), device=d),
    "as_tensor": lambda d: cr.as_tensor([1, 2, 3], device=d),
}


@pytest.mark.parametrize("name", sorted(CREATIONS))
def test_creation_on_the_device_gives_the_cpus_values(name):
    make = CREATIONS[name]
    cr.manual_seed(3)
    cpu = make(None)
    cr.manual_seed(3)        # NOTE: random draws are made on the host: the same on every device
    dev = make(DEV)
    assert on_check(dev) and cpu.device == cr.device("cpu")
    assert dev.dtype == cpu.dtype and dev.shape == cpu.shape
    np.testing.assert_array_equal(host(dev), cpu.numpy())


@pytest.mark.parametrize("fn", [cr.zeros_like, cr.ones_like, cr.rand_like, cr.randn_like,
                                cr.empty_like, lambda t: cr.full_like(t, 3.0)])
def test_like_functions_default_to_the_likes_device(fn):
    t = cr.ones(2, 3, dtype=cr.float64, device=DEV)
    out = fn(t)
    assert on_check(out) and out.dtype == cr.float64 and out.shape == (2, 3)
    assert fn(cr.ones(2)).device == cr.device("cpu")


def test_tensor_of_a_device_tensor_copies_it_there():
    t = cr.tensor([1.0, 2.0], dtype=cr.float64, device=DEV)
    copy = cr.tensor(t)
    assert on_check(copy) and copy.dtype == cr.float64
    copy.add_(1.0)
    assert host(t).tolist() == [1.0, 2.0]                          # a copy, not an alias
    assert cr.tensor(t, device="cpu").numpy().tolist() == [1.0, 2.0]
    assert on_check(cr.as_tensor(cr.ones(2), device=DEV))


def test_multinomial_and_normal_follow_their_tensors_device():
    probs = cr.tensor([0.0, 1.0, 0.0], device=DEV)
    picked = cr.multinomial(probs, 2, replacement=True)
    assert on_check(picked) and host(picked).tolist() == [1, 1]
    assert on_check(cr.normal(cr.zeros(3, device=DEV), 1.0))
    with pytest.raises(DeviceError, match="cpu.*check|check.*cpu"):
        cr.normal(cr.zeros(3, device=DEV), cr.ones(3))


# ---------------------------------------------------------------- Module.to

def _bn_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_module_to_moves_in_place_keeping_parameters_and_grads():
    cr.manual_seed(0)
    model = _bn_model()
    params = list(model.parameters())
    model(cr.randn(5, 3)).sum().backward()
    grads = [host(p.grad).copy() for p in params]
    values = [host(p).copy() for p in params]
    assert model.to(DEV) is model
    assert list(model.parameters()) == params        # the same Parameter objects
    for p, g, v in zip(params, grads, values):
        assert on_check(p) and on_check(p.grad) and p.requires_grad
        np.testing.assert_array_equal(host(p.grad), g)
        np.testing.assert_array_equal(host(p), v)
    assert all(on_check(b) for b in model.buffers())
    model.to(DEV, cr.float64)
    assert all(p.dtype == cr.float64 and on_check(p) for p in params)
    assert model[1].num_batches_tracked.dtype == cr.int64      # only floating ones convert
    model.cpu()
    assert all(p.device == cr.device("cpu") for p in params)
    model.to(cr.ones(1, device=DEV))                 # a tensor: its device and dtype
    assert all(on_check(p) and p.dtype == cr.float32 for p in params)


LAYERS = {
    "linear": lambda d: nn.Linear(3, 2, device=d),
    "conv": lambda d: nn.Conv2d(1, 2, 3, device=d),
    "batchnorm": lambda d: nn.BatchNorm2d(3, device=d),
    "layernorm": lambda d: nn.LayerNorm(3, device=d),
    "embedding": lambda d: nn.Embedding(4, 2, padding_idx=1, device=d),
    "rnn": lambda d: nn.RNN(2, 3, device=d),
    "lstm": lambda d: nn.LSTM(2, 3, num_layers=2, device=d),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_made_with_device_are_initialised_as_on_the_cpu(name):
    cr.manual_seed(0)
    layer = LAYERS[name](DEV)
    cr.manual_seed(0)
    cpu = LAYERS[name](None)
    state = layer.state_dict()
    assert state and all(on_check(v) for v in state.values())
    for k, v in cpu.state_dict().items():
        np.testing.assert_array_equal(host(state[k]), v.numpy(), err_msg=k)


def test_module_cuda_without_cupy_says_how_to_get_it():
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    with pytest.raises(DeviceError, match="chainrule\\[cuda\\]"):
        nn.Linear(2, 2).cuda()


def test_optimizer_made_before_the_move_keeps_working():
    def run(move_after):
        cr.manual_seed(0)
        model = nn.Linear(4, 2)
        opt = cr.optim.Adam(model.parameters(), lr=0.01)
        x = cr.randn(8, 4)
        for step in range(4):
            if step == move_after:
                model.to(DEV)
                x = x.to(DEV)
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        return [host(p) for p in model.parameters()], opt
    cpu_weights, _ = run(move_after=None)
    dev_weights, opt = run(move_after=2)             # two steps on the CPU, two on the device
    for a, b in zip(dev_weights, cpu_weights):
        np.testing.assert_array_equal(a, b)
    assert all(on_check(cr.as_tensor(v)) for s in opt.state.values()
               for v in s.values() if not isinstance(v, float))


# ---------------------------------------------------------------- training matches the CPU

def _mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def _train(make, optimizer, flatten, device, epochs, batches=None, batch=64, clip=None):
    """Losses per batch and the final state (host arrays) of a fixed-order run."""
    X, y = cr.data.load_digits(flatten=flatten)
    cr.manual_seed(0)
    model = make().to(device)
    opt = optimizer(model.parameters())
    X, y = X.to(device), y.to(device)
    losses = []
    n = len(X) if batches is None else batches * batch
    for _ in range(epochs):
        for i in range(0, n, batch):
            opt.zero_grad()
            loss = F.cross_entropy(model(X[i:i + batch]), y[i:i + batch])
            loss.backward()
            if clip is not None:
                assert on_check(cr.optim.clip_grad_norm_(model.parameters(), clip)) == \
                    (device == DEV)
            opt.step()
            losses.append(loss.item())
    assert all((p.device.type == DEV) == (device == DEV) for p in model.parameters())
    return losses, {k: host(v) for k, v in model.state_dict().items()}


TRAINING = {
    "mlp sgd momentum": (_mlp, lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9), True, 2, None,
                         None),
    "mlp adam": (_mlp, lambda ps: cr.optim.Adam(ps, lr=3e-3), True, 2, None, None),
    "mlp adamw clipped": (_mlp, lambda ps: cr.optim.AdamW(ps, lr=3e-3), True, 1, 8, 0.5),
    "cnn sgd momentum": (_cnn, lambda ps: cr.optim.SGD(ps, lr=0.05, momentum=0.9), False, 1, 6,
                         None),
    "cnn adam": (_cnn, lambda ps: cr.optim.Adam(ps, lr=3e-3), False, 1, 6, None),
}


@pytest.mark.parametrize("case", sorted(TRAINING))
def test_digits_training_on_the_device_equals_the_cpu(case):
    make, optimizer, flatten, epochs, batches, clip = TRAINING[case]
    with cr.num_threads(1):    # one BLAS summation order for both runs
        got = _train(make, optimizer, flatten, DEV, epochs, batches, clip=clip)
        want = _train(make, optimizer, flatten, "cpu", epochs, batches, clip=clip)
    assert got[0] == want[0]
    assert want[0][-1] < want[0][0]
    assert sorted(got[1]) == sorted(want[1])
    for k in want[1]:          # weights, and BatchNorm's running statistics
        np.testing.assert_array_equal(got[1][k], want[1][k], err_msg=k)


def test_functional_pieces_on_the_device_equal_the_cpu():
    def pieces(device):
        cr.manual_seed(1)
        x = cr.randn(4, 5, device=device)
        y = cr.tensor([0, 2, 1, 2], device=device)
        emb = nn.Embedding(6, 3, padding_idx=0).to(device)
        lstm = nn.LSTM(5, 3, num_layers=2, dropout=0.5, batch_first=True).to(device)
        return {
            "one_hot": F.one_hot(y, 3),
            "dropout": F.dropout(x, 0.5),
            "embedding": emb(cr.tensor([[0, 2, 5]], device=device)),
            "embedding list": F.embedding([[1, 2]], emb.weight),
            "weighted ce": F.cross_entropy(x[:, :3], y, weight=[1.0, 2.0, 3.0]),
            "smoothed ce": F.cross_entropy(x[:, :3], y, label_smoothing=0.1, ignore_index=1),
            "ce of a list": F.cross_entropy(x[:, :3], [0, 2, 1, 2]),
            "mse of a list": F.mse_loss(x[:, 0], [0.0, 1.0, 2.0, 3.0]),
            "bce logits": F.binary_cross_entropy_with_logits(
                x, (x > 0).float(), pos_weight=cr.ones(5, device=device)),
            "lstm": lstm(x.reshape(2, 2, 5))[0],
            "rnn": nn.RNN(5, 2).to(device)(x.reshape(2, 2, 5))[1],
        }
    cpu, dev = pieces(None), pieces(DEV)
    for k in cpu:
        assert on_check(dev[k]), k
        np.testing.assert_array_equal(host(dev[k]), cpu[k].numpy(), err_msg=k)


def test_transforms_on_the_device():
    x = cr.tensor([1.0, 3.0], device=DEV)
    jac = cr.jacobian(lambda v: v ** 2)(x)
    assert on_check(jac) and host(jac).tolist() == [[2.0, 0.0], [0.0, 6.0]]
    _, hv = cr.hvp(lambda v: (v ** 3).sum(), x, [1.0, 1.0])
    assert on_check(hv) and host(hv).tolist() == [6.0, 18.0]
    _, jv = cr.jvp(lambda v: v.sin(), cr.tensor([0.0], device=DEV), [2.0])
    assert on_check(jv) and host(jv).tolist() == [2.0]


# ---------------------------------------------------------------- checkpoints

def test_save_on_the_device_load_on_the_cpu_and_back():
    cr.manual_seed(0)
    model = _bn_model().to(DEV)
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    model(cr.randn(6, 3, device=DEV)).sum().backward()
    opt.step()
    buf = io.BytesIO()
    cr.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buf)
    want = {k: host(v) for k, v in model.state_dict().items()}

    buf.seek(0)
    state = cr.load(buf)                              # a host file: loads on the CPU
    assert all(v.device == cr.device("cpu") for v in state["model"].values())
    cpu_model = _bn_model()
    cpu_model.load_state_dict(state["model"])
    for k, v in cpu_model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), want[k], err_msg=k)

    for where in (DEV, cr.device(DEV), {"cpu": DEV}, lambda t, location: t.to(DEV)):
        buf.seek(0)
        state = cr.load(buf, map_location=where)
        assert all(on_check(v) for v in state["model"].values()), where
        np.testing.assert_array_equal(host(state["model"]["0.weight"]), want["0.weight"])
    buf.seek(0)
    assert cr.load(buf, map_location={"cuda:0": "cpu"})["model"]["0.weight"].device.type == "cpu"

    back = _bn_model().to(DEV)                        # a CPU checkpoint into a device model
    back.load_state_dict(cpu_model.state_dict())
    assert all(on_check(p) for p in back.parameters())
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(host(v), want[k], err_msg=k)

    opt2 = cr.optim.Adam(back.parameters(), lr=0.01)   # optimizer state onto the device
    buf.seek(0)
    opt2.load_state_dict(cr.load(buf)["optimizer"])
    moments = opt2.state[id(back[0].weight)]["exp_avg"]
    assert on_check(cr.as_tensor(moments))
    np.testing.assert_array_equal(host(cr.as_tensor(moments)),
                                  host(cr.as_tensor(opt.state[id(model[0].weight)]["exp_avg"])))


# ---------------------------------------------------------------- explain

def _explained(device):
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 3)).to(device)
    x = cr.randn(2, 4, device=device)
    x.name = "x"
    loss = F.cross_entropy(model(x), cr.tensor([0, 2], device=device))
    loss.name = "L"
    rep = cr.explain(loss, verify=True)
    update = rep.step(optimizer=cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    w = cr.tensor(0.3, dtype=cr.float64, requires_grad=True, name="w", device=device)
    y = (w * 2.0).sigmoid()
    y.name = "y"
    textbook = cr.explain(y, round=2)
    return [str(rep), rep.markdown(), rep.to_json(), rep.graph().dot, str(rep.flow()),
            str(update), str(textbook), str(textbook.step(lr=0.1)), str(w.item())]


def test_explain_of_a_device_graph_reads_the_same_as_on_the_cpu():
    got, want = _explained(DEV), _explained(None)
    for a, b in zip(got, want):
        assert a == b


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # sqrt'(0) divides by zero, as on the CPU
def test_anomaly_mode_reports_a_device_nan():
    x = cr.tensor([0.0, 1.0], requires_grad=True, device=DEV)
    with cr.detect_anomaly():
        y = x.sqrt().sum()
        with pytest.raises(cr.errors.AnomalyError, match="sqrt"):
            y.backward()


# ---------------------------------------------------------------- errors

def test_a_cpu_batch_into_a_device_model_names_both_devices():
    model = nn.Sequential(nn.Linear(3, 2)).to(DEV)
    with pytest.raises(DeviceError, match=r"cpu and check:0|check:0 and cpu") as info:
        model(cr.ones(4, 3))
    assert ".to(" in str(info.value)
    with pytest.raises(DeviceError, match=r"check:0.*cpu") as info:
        F.cross_entropy(cr.ones(4, 3, device=DEV), cr.tensor([0, 1, 2, 0]))
    assert "target" in str(info.value) and ".to(" in str(info.value)
    with pytest.raises(DeviceError, match=r"check:0.*cpu"):
        nn.Embedding(4, 2).to(DEV)(cr.tensor([1, 2]))


def test_numpy_of_a_device_tensor_says_call_cpu_first():
    t = cr.ones(2, device=DEV)
    with pytest.raises(DeviceError, match=r"\.cpu\(\)"):
        t.numpy()
    assert t.cpu().numpy().tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- data and fit

def test_loader_accepts_pin_memory_and_batches_move_with_to():
    ds = cr.data.TensorDataset(cr.arange(10.0), cr.arange(10))
    loader = cr.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0, pin_memory=True)
    plain = cr.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0)
    for (x, y), (px, py) in zip(loader, plain):
        assert x.tolist() == px.tolist() and y.tolist() == py.tolist()   # nothing changes
        assert on_check(x.to(DEV))
    on_device = cr.data.TensorDataset(cr.arange(10.0, device=DEV), cr.arange(10, device=DEV))
    x, y = next(iter(cr.data.DataLoader(on_device, batch_size=4, shuffle=True, seed=0)))
    px, py = next(iter(cr.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0)))
    assert on_check(x) and on_check(y)
    assert host(x).tolist() == px.tolist() and host(y).tolist() == py.tolist()


def _fit(device, tmp_path):
    X, y = cr.data.load_digits()
    cr.manual_seed(0)
    model = _mlp()
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train = cr.data.DataLoader(cr.data.TensorDataset(X[:512], y[:512]), batch_size=64,
                               shuffle=True, seed=0)
    val = cr.data.DataLoader(cr.data.TensorDataset(X[512:768], y[512:768]), batch_size=128)
    history = cr.train.fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=2,
                           progress=False, device=device, checkpoint_dir=tmp_path, plot=False,
                           clip_grad_norm=1.0)
    return model, history


def test_fit_on_a_device_equals_fit_on_the_cpu(tmp_path):
    with cr.num_threads(1):
        model, history = _fit(DEV, tmp_path / "dev")
        cpu_model, cpu_history = _fit(None, tmp_path / "cpu")
    assert all(on_check(p) for p in model.parameters())
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert history[key] == cpu_history[key], key
    saved = cr.load(tmp_path / "dev" / "last.safetensors")     # a host file, as always
    cpu_saved = cr.load(tmp_path / "cpu" / "last.safetensors")
    for k, v in cpu_saved["model"].items():
        np.testing.assert_array_equal(saved["model"][k].numpy(), v.numpy(), err_msg=k)


# ---------------------------------------------------------------- GPU syncs
# Each read of a device value on the host (bool of a 0-d array, .item(), float()) makes a GPU
# wait until everything queued before it is done. A training step reads one value: whether
# every class label is valid (fused loss or general path); an embedding adds its index check.

@contextlib.contextmanager
def _host_reads():
    """Count the reads of check-device values on the host inside the block."""
    from chainrule.devices.check import CheckedArray
    reads = []

    def counted(name, method):
        def read(self, *args, **kwargs):
            reads.append(name)
            return method(self, *args, **kwargs)
        return read

    getattr_ = CheckedArray.__getattr__

    def attribute(self, name):
        if name in ("item", "tolist"):
            reads.append(name)
        return getattr_(self, name)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("__bool__", "__float__", "__int__", "__index__"):
            mp.setattr(CheckedArray, name, counted(name, getattr(CheckedArray, name)))
        mp.setattr(CheckedArray, "__getattr__", attribute)
        yield reads


class _TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.lstm = nn.Embedding(20, 8), nn.LSTM(8, 16, batch_first=True)
        self.out = nn.Linear(16, 20)

    def forward(self, x):
        return self.out(self.lstm(self.emb(x))[0]).reshape(-1, 20)


SYNC_CASES = {   # model, input shape (or vocabulary for ints), classes, reads per step
    "mlp": (lambda: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10)),
            (16, 12), 10, 1),
    "cnn+bn+dropout": (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(36, 10)), (16, 1, 8, 8), 10, 1),
    "layernorm+gelu": (lambda: nn.Sequential(nn.Linear(12, 16), nn.LayerNorm(16), nn.GELU(),
                                             nn.Linear(16, 10)), (16, 12), 10, 1),
    "embedding+lstm": (_TinyLM, 20, 20, 2),
}


@pytest.mark.parametrize("case", sorted(SYNC_CASES))
def test_a_training_step_reads_the_device_only_where_it_must(case):
    make, shape, classes, budget = SYNC_CASES[case]
    cr.manual_seed(0)
    model = make().to("check")
    opt = cr.optim.AdamW(model.parameters(), lr=1e-3)
    x = (cr.randint(0, shape, (4, 6)) if isinstance(shape, int) else cr.randn(*shape))
    y = cr.randint(0, classes, (24 if isinstance(shape, int) else shape[0],))
    x, y = x.to("check"), y.to("check")
    for _ in range(3):
        with _host_reads() as reads:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        assert len(reads) == budget, reads
