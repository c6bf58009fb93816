"""PyTorch's API surface on chainrule (issue 13, part A), checked against PyTorch where it has
an answer: generators, the Tensor methods PyTorch programs call, `x.max(1)` returning
(values, indices), item assignment, devices, chainrule.utils.data, the new optimizer and
schedules, nn.ModuleDict, saving through file objects, `python -m chainrule`. The one-line
comparisons of many calls are the table in test_pytorch_compat.py."""
import io
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import CheckpointError, DeviceError, DTypeError, GraphError

torch = pytest.importorskip("torch")


def _pair(shape=(3, 4), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


# ----- x.max(1): the silently wrong call, now PyTorch's -----
@pytest.mark.parametrize("name", ["max", "min"])
def test_positional_dim_returns_values_and_indices_like_pytorch(name):
    x, t = _pair()
    ours, theirs = getattr(x, name)(1), getattr(t, name)(1)
    assert isinstance(ours, tuple) and len(ours) == 2
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].detach().numpy())   # every row's
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    assert ours[0].shape == (3,) and ours.indices.dtype == cr.int64
    ours[0].sum().backward()
    theirs[0].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    kept, t_kept = getattr(cr, name)(x, 0, True), getattr(torch, name)(t, 0, True)
    assert kept.values.shape == tuple(t_kept.values.shape) == (1, 4)


def test_max_spellings():
    x = cr.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.max(axis=1).tolist() == [5.0, 7.0]              # NumPy's keyword: values
    assert x.max(1, keepdims=True).shape == (2, 1)           # NumPy's keepdims: values
    assert x.max((0, 1)).item() == 7.0                       # a tuple of axes: values
    assert x.max(-1).indices.tolist() == [1, 0]              # negative dims work
    assert x.max(x * 0 + 3).tolist() == [[3.0, 5.0], [7.0, 3.0]]    # elementwise
    with pytest.raises(TypeError):
        x.max(1, axis=0)
    with pytest.raises(TypeError):
        x.max(1, True, keepdim=True)


def test_argmax_sort_topk_gather_gradients_match_pytorch():
    x, t = _pair((4, 5), seed=3)
    for ours, theirs in [
        (lambda a: a.sort(dim=0, descending=True)[0] * cr.arange(5.0),
         lambda a: a.sort(dim=0, descending=True)[0] * torch.arange(5.0)),
        (lambda a: a.topk(2, dim=1)[0] ** 2, lambda a: a.topk(2, dim=1)[0] ** 2),
        (lambda a: a.gather(0, cr.tensor([[3, 0, 1, 1, 2]])) * 3,
         lambda a: a.gather(0, torch.tensor([[3, 0, 1, 1, 2]])) * 3),
    ]:
        x.grad, t.grad = None, None
        ours(x).sum().backward()
        theirs(t).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    assert x.argmax(1).tolist() == t.argmax(1).tolist()
    assert x.sort(1).indices.tolist() == t.sort(dim=1, stable=True).indices.tolist()


# ----- generators -----
def test_generator_reproduces_and_leaves_the_default_stream_alone():
    g = cr.Generator().manual_seed(5)
    assert isinstance(g.manual_seed(5), cr.Generator) and g.initial_seed() == 5
    cr.manual_seed(0)
    expected = cr.randn(3).tolist()
    cr.manual_seed(0)
    a = cr.randn(4, generator=g)
    assert cr.randn(3).tolist() == expected          # g's draws did not move the default
    b = cr.randn(4, generator=cr.Generator().manual_seed(5))
    assert a.tolist() == b.tolist()
    state = g.get_state()
    first = cr.randint(0, 100, (5,), generator=g).tolist()
    g.set_state(state)
    assert cr.randint(0, 100, (5,), generator=g).tolist() == first
    for draw in (lambda gen: cr.rand(3, generator=gen), lambda gen: cr.randperm(7, generator=gen),
                 lambda gen: cr.multinomial(cr.ones(6), 3, generator=gen),
                 lambda gen: cr.zeros(3).normal_(generator=gen),
                 lambda gen: nn.init.kaiming_uniform_(cr.zeros(3, 4), generator=gen)):
        assert draw(cr.Generator().manual_seed(1)).tolist() == \
            draw(cr.Generator().manual_seed(1)).tolist()
    assert cr.default_generator.manual_seed(3) is cr.default_generator
    with pytest.raises(DTypeError):
        cr.randn(2, generator=1234)


def test_multinomial_draws_in_proportion_and_without_repeats():
    w = cr.tensor([1.0, 3.0, 0.0, 4.0])
    draws = cr.multinomial(w, 20000, replacement=True, generator=cr.Generator().manual_seed(0))
    freq = np.bincount(draws.numpy(), minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.125, 0.375, 0.0, 0.5], atol=0.015)
    rows = cr.multinomial(cr.tensor([[1.0, 1.0, 1.0], [0.0, 5.0, 1.0]]), 2)
    assert rows.shape == (2, 2) and rows.dtype == cr.int64
    assert all(len(set(r)) == 2 for r in rows.tolist()) and 0 not in rows[1].tolist()
    # PyTorch's documented contract: without replacement, num_samples must not exceed the
    # non-zero categories (its CPU kernel does not check, and returns a zero-weight one)
    with pytest.raises(ValueError, match="fewer non-zero"):
        cr.multinomial(cr.tensor([1.0, 0.0]), 2)
    with pytest.raises(ValueError):
        cr.multinomial(cr.tensor([1.0, -1.0]), 1)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor([1.0, -1.0]), 1)


def test_dataloader_and_random_split_take_a_generator():
    from chainrule.utils.data import DataLoader, TensorDataset, random_split
    ds = TensorDataset(cr.arange(10))
    g = cr.Generator().manual_seed(7)
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=g)
    first = [b[0].tolist() for b in loader]
    second = [b[0].tolist() for b in loader]
    assert first != second                       # a new order each epoch, from g
    g.manual_seed(7)                             # reseeding g replays the epochs (PyTorch)
    assert [b[0].tolist() for b in loader] == first
    parts = random_split(ds, [0.6, 0.4], generator=cr.Generator().manual_seed(1))
    again = random_split(ds, [6, 4], generator=cr.Generator().manual_seed(1))
    assert [list(p.indices) for p in parts] == [list(p.indices) for p in again]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    with pytest.raises(TypeError):
        random_split(ds, [5, 5], generator=cr.Generator(), seed=1)


# ----- tensors -----
def test_from_numpy_shares_memory_and_as_tensor_avoids_copies():
    a = np.arange(4.0)
    t, tt = cr.from_numpy(a), torch.from_numpy(a)
    a[0] = 9.0
    assert t.tolist() == tt.tolist() == [9.0, 1.0, 2.0, 3.0] and t.dtype == cr.float64
    with cr.no_grad():
        t[1] = -1.0
    assert a[1] == -1.0
    assert cr.as_tensor(t) is t and cr.as_tensor(a).numpy() is a
    assert cr.as_tensor(a, dtype=cr.float32).dtype == cr.float32
    with pytest.raises(DTypeError):
        cr.from_numpy([1.0, 2.0])


def test_item_assignment_bumps_the_version_and_guards_the_graph():
    x = cr.zeros(2, 3)
    v = x._version
    x[0, 1] = 5.0
    x[x > 4] = 7.0
    x[:, 2] = cr.tensor([1.0, 2.0])
    x[cr.tensor([1])] = 3.0
    assert x.tolist() == [[0.0, 7.0, 1.0], [3.0, 3.0, 3.0]] and x._version == v + 4
    w, tw = cr.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        tw[0] = 2.0
    with pytest.raises(GraphError):              # a RuntimeError, as PyTorch's
        w[0] = 2.0
    y = w * w                                     # saves w (w * 2 would not, as in PyTorch)
    loss = (y * y).sum()
    with cr.no_grad():
        w[0] = 10.0                               # allowed, and the saved graph knows
    with pytest.raises(RuntimeError, match="modified|in place|inplace"):
        loss.backward()


def test_all_and_any_are_tensors_with_a_truth_value():
    x = cr.tensor([[1.0, 0.0], [2.0, 3.0]])
    assert isinstance(x.all(), cr.Tensor) and x.all().shape == () and x.all().dtype == cr.bool_
    assert not x.all() and x.any() and bool((x >= 0).all())
    assert x.all(dim=1).tolist() == torch.tensor(x.numpy()).all(dim=1).tolist()
    assert cr.any(x > 2, 0, keepdim=True).tolist() == [[False, True]]


def test_array_protocol_and_plotting():
    t = cr.tensor([[0.0, 0.5], [1.0, 0.25]], requires_grad=True)
    assert np.asarray(t) is t.numpy()
    assert np.array(t, copy=True) is not t.numpy()
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    image = ax.imshow(t)
    assert image.get_array().shape == (2, 2)
    plt.close(fig)


def test_devices():
    assert cr.tensor(1.0).device == cr.device("cpu") and str(cr.device("cpu")) == "cpu"
    x = cr.ones(2)
    assert x.to("cpu") is x and x.to(cr.device("cpu")) is x and x.cpu() is x
    assert x.to(torch.device("cpu")) is x        # a torch.device naming the CPU is fine too
    assert x.to("cpu", copy=True) is not x
    # naming a device loads nothing, as in PyTorch; using it does
    assert str(cr.device("cuda:1")) == "cuda:1" and cr.device("cuda", 0) != cr.device("cuda")
    for bad in (lambda: cr.device("mps"), lambda: cr.zeros(2, device="mps"),
                lambda: cr.device("cuda:x")):
        with pytest.raises(DeviceError, match="'cpu', 'cuda'"):
            bad()
    assert issubclass(DeviceError, RuntimeError)


@pytest.mark.skipif(cr.cuda.is_available(), reason="checks the errors of a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    x = cr.ones(2)
    for bad in (lambda: x.to("cuda:0"), lambda: x.to(0), lambda: x.cuda(),
                lambda: nn.Linear(2, 2).to("cuda"), lambda: x.type("torch.cuda.FloatTensor")):
        with pytest.raises(DeviceError, match="cuda"):
            bad()


def test_tensors_move_between_devices_differentiably():
    x = cr.tensor([1.0, -2.0], requires_grad=True)
    y = x.to("check")
    assert str(y.device) == "check:0" and not y.is_cuda and y.grad_fn is not None
    loss = (y * y).sum().cpu()
    assert loss.device == cr.device("cpu")
    loss.backward()
    assert x.grad.device == cr.device("cpu") and x.grad.tolist() == [2.0, -4.0]
    assert y.to(x).device == x.device and y.to(cr.float64).device == y.device
    assert "device='check:0'" in repr(y)
    with pytest.raises(DeviceError, match="check:0 and cpu"):
        y + x
    with pytest.raises(DeviceError, match=r"\.cpu\(\)"):
        y.numpy()
    with pytest.raises(DeviceError, match=r"\.cpu\(\)"):
        np.asarray(y)
    assert y.numpy(force=True).tolist() == [1.0, -2.0]


def test_type_conversions_return_self_when_nothing_changes():
    x = cr.tensor([1.5, -2.5])
    assert x.float() is x and x.type(cr.float32) is x and x.to(cr.float32) is x
    assert x.long().tolist() == torch.tensor([1.5, -2.5]).long().tolist()
    assert x.type() == "torch.FloatTensor" and x.long().type() == "torch.LongTensor"
    with pytest.raises(DTypeError):
        x.type("torch.NoSuchTensor")


def test_one_hot_and_log_softmax_axis():
    F = nn.functional
    labels = cr.tensor([0, 3, 1])
    np.testing.assert_array_equal(F.one_hot(labels).numpy(),
                                  torch.nn.functional.one_hot(torch.tensor([0, 3, 1])).numpy())
    with pytest.raises(DTypeError):
        F.one_hot(cr.tensor([0.0, 1.0]))
    with pytest.raises(IndexError):
        F.one_hot(cr.tensor([-1, 0]))
    x = cr.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert F.log_softmax(x, axis=0).tolist() == F.log_softmax(x, dim=0).tolist()
    with pytest.raises(TypeError):
        F.log_softmax(x, dim=0, axis=1)


def test_histc_matches_pytorch_on_many_values():
    data = np.random.default_rng(1).standard_normal(5000).astype(np.float32) * 3
    for bins, lo, hi in [(10, 0, 0), (37, -2.5, 4.0), (1, -1, 1)]:
        np.testing.assert_array_equal(cr.histc(cr.tensor(data), bins, lo, hi).numpy(),
                                      torch.histc(torch.tensor(data), bins, lo, hi).numpy())
    h, e = cr.histogram(cr.tensor(data), bins=7, weight=cr.tensor(np.abs(data)))
    th, te = torch.histogram(torch.tensor(data), bins=7, weight=torch.tensor(np.abs(data)))
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-4)
    np.testing.assert_allclose(e.numpy(), te.numpy(), rtol=1e-5, atol=1e-5)


# ----- nn, optim -----
def test_module_dict_registers_its_modules():
    heads = nn.ModuleDict({"a": nn.Linear(2, 3)})
    heads["b"] = nn.Linear(3, 1)
    assert list(heads) == ["a", "b"] and len(heads) == 2 and "b" in heads
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    opt = cr.optim.SGD(heads.parameters(), lr=0.1)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == 9 + 4
    assert isinstance(heads.pop("a"), nn.Linear) and list(heads.keys()) == ["b"]
    assert nn.LSTM(2, 3).flatten_parameters() is None


def test_adadelta_matches_pytorch_over_many_steps():
    x, t = _pair((5,), seed=4)
    ours = cr.optim.Adadelta([x], lr=0.7, rho=0.95, weight_decay=0.01)
    theirs = torch.optim.Adadelta([t], lr=0.7, rho=0.95, weight_decay=0.01)
    for _ in range(30):
        for opt, p in ((ours, x), (theirs, t)):
            opt.zero_grad()
            (p ** 4 - p).sum().backward()
            opt.step()
    np.testing.assert_allclose(x.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-7)
    state = ours.state_dict()
    fresh = cr.optim.Adadelta([cr.tensor(x.numpy(), requires_grad=True)], lr=0.7)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["rho"] == 0.95


def test_new_schedules_round_trip_their_state():
    from chainrule.optim import lr_scheduler as S

    def make(kind):
        opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        return opt, {"multi": lambda: S.MultiStepLR(opt, [2, 5]),
                     "lambda": lambda: S.LambdaLR(opt, lambda e: 1 / (1 + e)),
                     "onecycle": lambda: S.OneCycleLR(opt, 1.0, total_steps=12),
                     "plateau": lambda: S.ReduceLROnPlateau(opt, patience=0)}[kind]()

    for kind in ("multi", "lambda", "onecycle", "plateau"):
        opt, s = make(kind)
        for i in range(4):
            s.step(1.0) if kind == "plateau" else s.step()
        buf = io.BytesIO()
        cr.save({"opt": opt.state_dict(), "sched": s.state_dict()}, buf)
        buf.seek(0)
        opt2, s2 = make(kind)
        saved = cr.load(buf)
        opt2.load_state_dict(saved["opt"])
        s2.load_state_dict(saved["sched"])
        for sched, o in ((s, opt), (s2, opt2)):
            sched.step(1.0) if kind == "plateau" else sched.step()
        assert s2.get_last_lr() == s.get_last_lr(), kind
    opt, s = make("onecycle")
    for _ in range(12):       # PyTorch allows total_steps steps after the constructor's
        s.step()
    with pytest.raises(ValueError, match="total_steps"):
        s.step()


# ----- io, data, command line -----
def test_save_and_load_through_file_objects(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    buf = io.BytesIO()
    cr.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    fresh.load_state_dict(cr.load(buf, map_location="cpu", weights_only=True))
    x = cr.randn(4, 3)
    assert fresh(x).tolist() == model(x).tolist()
    path = tmp_path / "model.pt"
    with open(path, "wb") as f:
        cr.save({"w": cr.ones(2), "epoch": 3}, f)
    with open(path, "rb") as f:
        assert cr.load(f)["epoch"] == 3
    assert cr.load(path)["w"].tolist() == [1.0, 1.0]      # the same bytes as a path
    with pytest.raises(CheckpointError, match="truncated"):
        cr.load(io.BytesIO(b"\x01\x02"))
    with pytest.raises(CheckpointError, match="binary"):
        cr.load(io.StringIO("text"))
    with pytest.raises(DeviceError):
        cr.load(path, map_location="cuda")


def test_utils_data_is_chainrule_data():
    import chainrule.utils.data as tud
    from chainrule.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split
    assert (DataLoader, Dataset, Subset, TensorDataset, random_split) == (
        cr.data.DataLoader, cr.data.Dataset, cr.data.Subset, cr.data.TensorDataset,
        cr.data.random_split)
    assert cr.utils.data is tud


def test_python_dash_m_chainrule():
    out = subprocess.run([sys.executable, "-m", "chainrule", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "train" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "chainrule", "no-such-command"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
