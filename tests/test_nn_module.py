"""Module machinery: registration, traversal, modes, zero_grad, state_dict round trips and
their errors, PyTorch-compatible keys, parameter names, repr, and nn.init statistics."""
import copy
import math
import pickle

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import CheckpointError

try:
    import torch
except ImportError:   # the parity tests below say so when they skip
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch parity tests need torch installed")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6))
        self.head = nn.Linear(6, 2)
        self.scale = nn.Parameter(cr.ones(1))
        self.register_buffer("steps", cr.zeros(1))
        self.note = "plain attribute"

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_registration_and_traversal_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                     "head.weight", "head.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "body.2",
                                                   "head"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "Linear"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "body.2.running_mean",
                                                   "body.2.running_var",
                                                   "body.2.num_batches_tracked"]
    assert net.note == "plain attribute" and "note" not in dict(net.named_parameters())
    assert net.num_parameters() == 4 * 6 + 6 + 6 + 6 + 6 * 2 + 2 + 1
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing
    with pytest.raises(TypeError, match="nn.Parameter or None"):
        net.head.weight = cr.ones(2, 6)       # a plain tensor cannot replace a parameter
    net.head.bias = None                      # ... but None can (no bias)
    assert "head.bias" not in net.state_dict()


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias"]


def test_parameters_are_named_after_their_place():
    net = Net()
    assert net.body[0].weight.name == "body.0.weight"
    assert net.head.bias.name == "head.bias"
    outer = nn.Sequential(net)            # nesting again renames automatic names
    assert net.head.bias.name == "0.head.bias"
    named = nn.Parameter(cr.ones(2), name="gain")
    holder = nn.Module()
    holder.g = named
    assert named.name == "gain"           # a name the user chose is kept
    assert outer[0].layer_path() == "Sequential.0 (Net)"


def test_train_eval_and_zero_grad():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(cr.randn(5, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_and_detachment():
    cr.manual_seed(1)
    a = Net()
    a(cr.randn(8, 4))                      # moves the running statistics
    cr.manual_seed(2)
    b = Net()
    state = a.state_dict()
    assert all(not t.requires_grad and t._node is None for t in state.values())
    assert list(state) == [n for n, _ in a.named_parameters()][:1] + [
        "steps", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
        "body.2.running_mean", "body.2.running_var", "body.2.num_batches_tracked",
        "head.weight", "head.bias"]
    weight_obj = b.head.weight
    assert b.load_state_dict(state) == ([], [])
    assert b.head.weight is weight_obj     # loaded in place: optimizers keep working
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k].numpy())
    x = cr.randn(3, 4)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_lists_every_problem_at_once():
    net = Net()
    state = dict(net.state_dict())
    del state["head.bias"], state["scale"]
    state["head.extra"] = cr.ones(2)
    state["body.0.weight"] = cr.ones(5, 4)
    with pytest.raises(CheckpointError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    for part in ("missing keys: scale, head.bias", "unexpected keys: head.extra",
                 "body.0.weight: checkpoint (5, 4), model (6, 4)", "strict=False"):
        assert part in msg
    del state["body.0.weight"]
    before = net.head.weight.numpy().copy()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["scale", "body.0.weight", "head.bias"] and unexpected == ["head.extra"]
    np.testing.assert_array_equal(net.head.weight.numpy(), before)
    state["head.weight"] = np.zeros((3, 6))
    with pytest.raises(CheckpointError, match="head.weight"):
        net.load_state_dict(state, strict=False)   # wrong shapes fail even when not strict


@needs_torch
def test_state_dict_keys_and_values_move_to_and_from_torch():
    def build(m):
        return m.Sequential(m.Conv2d(1, 2, 3), m.BatchNorm2d(2), m.ReLU(), m.Flatten(),
                            m.Linear(8, 3), m.LayerNorm(3))
    ours, theirs = build(nn), build(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in ours.state_dict().items():
        assert v.shape == tuple(theirs.state_dict()[k].shape), k
    lstm_keys = list(nn.LSTM(3, 4, num_layers=2).state_dict())
    assert lstm_keys == list(torch.nn.LSTM(3, 4, num_layers=2).state_dict())
    # torch -> chainrule: load PyTorch tensors directly, then compute the same output
    theirs.double().eval()
    ours.double().eval()
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


@needs_torch
def test_repr_reads_like_torch():
    def build(m):
        return m.Sequential(m.Linear(4, 8), m.ReLU(), m.Conv2d(1, 2, 3, padding=1),
                            m.LayerNorm(3), m.Flatten(), m.Softmax(dim=-1))
    assert repr(build(nn)) == repr(build(torch.nn))
    assert repr(Net()).startswith("Net(\n  (body): Sequential(\n    (0): Linear(in_features=4")


def test_copy_and_pickle_keep_parameters():
    net = Net()
    clone = copy.deepcopy(net)
    assert clone.head.weight is not net.head.weight
    np.testing.assert_array_equal(clone.head.weight.numpy(), net.head.weight.numpy())
    assert isinstance(clone.head.weight, nn.Parameter)
    back = pickle.loads(pickle.dumps(net))
    assert [n for n, _ in back.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_to_double_keeps_parameter_objects():
    net = Net()
    w = net.head.weight
    net.double()
    assert net.head.weight is w and w.dtype == np.float64
    assert net.body[2].running_mean.dtype == np.float64
    assert net.body[2].num_batches_tracked.dtype == np.int64
    assert net.to("cpu") is net and w.dtype == np.float64
    if not cr.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            net.to("cuda")


def test_module_list_and_sequential_indexing():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Tanh()])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 3 and isinstance(layers[-1], nn.Linear)
    seq = nn.Sequential(*layers)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    assert seq(cr.ones(3, 2)).shape == (3, 1)
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(cr.ones(1))


# ------------------------------------------------------------------ init

def test_default_linear_and_conv_init_follow_torch():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.isclose(w.std(), bound / math.sqrt(3), rtol=0.02)      # U(-b, b) has std b/√3
    assert np.abs(b).max() <= bound
    conv = nn.Conv2d(8, 16, 3, groups=2)            # fan_in = 8/2 · 3 · 3 = 36
    assert np.abs(conv.weight.numpy()).max() <= 1 / 6
    cr.manual_seed(3)
    first = nn.Linear(5, 5).weight.numpy().copy()
    cr.manual_seed(3)
    np.testing.assert_array_equal(first, nn.Linear(5, 5).weight.numpy())


@pytest.mark.parametrize("fn, expected_std", [
    (lambda t: nn.init.xavier_uniform_(t), math.sqrt(2 / (200 + 300))),
    (lambda t: nn.init.xavier_normal_(t, gain=2.0), 2 * math.sqrt(2 / (200 + 300))),
    (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / 200)),
    (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
     math.sqrt(2 / 300)),
    (lambda t: nn.init.normal_(t, 1.0, 0.5), 0.5),
    (lambda t: nn.init.uniform_(t, -3.0, 3.0), 3 / math.sqrt(3)),
])
def test_init_statistics(fn, expected_std):
    t = cr.zeros(300, 200)
    out = fn(t)
    assert out is t
    assert np.isclose(t.numpy().std(), expected_std, rtol=0.02)
    assert t.dtype == np.float32


def test_init_constants_and_errors():
    t = cr.zeros(3, 4)
    assert np.all(nn.init.ones_(t).numpy() == 1)
    assert np.all(nn.init.zeros_(t).numpy() == 0)
    assert np.all(nn.init.constant_(t, 0.5).numpy() == 0.5)
    assert np.isclose(nn.init.calculate_gain("leaky_relu", 0.2), math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="fan in"):
        nn.init.xavier_uniform_(cr.zeros(5))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swish")
