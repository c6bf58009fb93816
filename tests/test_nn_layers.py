"""Layers: gradients by gradcheck (float64, small sizes) and PyTorch parity (weights copied by
state_dict name), plus train/eval behaviour of Dropout and BatchNorm."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import DTypeError, IndexError_, ShapeError
from chainrule.ops import conv as conv_ops
from chainrule.nn import functional as F

try:
    import torch
except ImportError:   # the parity tests below say so when they skip
    torch = None


def _param_slots(module):
    return [(m, name) for m in module.modules() for name, p in m._parameters.items()
            if p is not None]


def module_gradcheck(module, *inputs, out=lambda y: y, **kw):
    """gradcheck of module(*inputs) with respect to the inputs and every parameter."""
    module.double()
    slots = _param_slots(module)
    params = [m._parameters[n] for m, n in slots]
    n_in = len(inputs)

    def f(*args):
        saved = list(params)
        for (m, n), p in zip(slots, args[n_in:]):
            m._parameters[n] = p
        try:
            return out(module(*args[:n_in]))
        finally:
            for (m, n), p in zip(slots, saved):
                m._parameters[n] = p
    return cr.gradcheck(f, list(inputs) + params, **kw)


def rand(*shape, low=-1.0, high=1.0):
    return np.random.default_rng(sum(shape) + len(shape)).uniform(low, high, shape)


# ------------------------------------------------------------------ gradcheck

GRADCHECK_CASES = {
    "linear": (lambda: nn.Linear(3, 2), [rand(4, 3)]),
    "linear_3d_no_bias": (lambda: nn.Linear(3, 2, bias=False), [rand(2, 2, 3)]),
    "conv_stride_pad": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), [rand(2, 2, 5, 5)]),
    "conv_dilation_groups": (lambda: nn.Conv2d(4, 2, (2, 3), dilation=(2, 1), groups=2),
                             [rand(1, 4, 5, 6)]),
    "maxpool": (lambda: nn.MaxPool2d(2), [rand(2, 2, 4, 4)]),
    "maxpool_pad_stride": (lambda: nn.MaxPool2d(3, stride=2, padding=1), [rand(1, 2, 5, 5)]),
    "avgpool": (lambda: nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
                [rand(1, 2, 3, 3)]),
    "batchnorm1d": (lambda: nn.BatchNorm1d(3), [rand(5, 3)]),
    "batchnorm2d": (lambda: nn.BatchNorm2d(2), [rand(3, 2, 2, 2)]),
    "layernorm": (lambda: nn.LayerNorm((2, 3)), [rand(4, 2, 3)]),
    "rnn": (lambda: nn.RNN(3, 2, num_layers=2), [rand(3, 2, 3)]),
    "flatten": (lambda: nn.Flatten(), [rand(2, 3, 2)]),
}
ACTIVATIONS = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "leaky_relu": lambda: nn.LeakyReLU(0.2), "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU("tanh"), "softmax": lambda: nn.Softmax(dim=1),
    "log_softmax": lambda: nn.LogSoftmax(dim=0), "silu": nn.SiLU, "softplus": nn.Softplus,
    "identity": nn.Identity,
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_layer_gradcheck(name):
    make, inputs = GRADCHECK_CASES[name]
    if name.startswith("maxpool"):   # distinct values: no ties inside a window
        inputs = [np.random.default_rng(3).permutation(inputs[0].size).reshape(inputs[0].shape)
                  * 0.1]
    assert module_gradcheck(make(), *[cr.tensor(a) for a in inputs])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name):
    x = rand(3, 4)
    x[np.abs(x) < 0.1] += 0.3    # away from the kinks of relu/leaky_relu at 0
    assert module_gradcheck(ACTIVATIONS[name](), cr.tensor(x))


def test_lstm_gradcheck_batch_first():
    lstm = nn.LSTM(2, 2, batch_first=True)
    assert module_gradcheck(lstm, cr.tensor(rand(2, 3, 2)), out=lambda r: (r[0], r[1][1]))


def test_embedding_gradcheck_with_repeated_indices():
    idx = cr.tensor([[1, 3, 1], [0, 4, 3]])
    assert module_gradcheck(nn.Embedding(5, 3), idx)
    emb = nn.Embedding(5, 3, padding_idx=0)   # its row is read but never trained (PyTorch)
    out = emb(idx)
    out.sum().backward()
    assert np.all(emb.weight.grad.numpy()[0] == 0)          # padding row: no gradient
    assert np.allclose(emb.weight.grad.numpy()[1], 2.0)     # index 1 used twice


def test_dropout_gradcheck_with_fixed_mask():
    drop = nn.Dropout(0.4)

    def f(x):
        cr.manual_seed(7)
        return drop(x)
    assert cr.gradcheck(f, [cr.tensor(rand(4, 5))])


def test_im2col_col2im_are_adjoint_and_differentiable():
    x = cr.tensor(rand(1, 2, 4, 5))
    geom = dict(kernel_size=(2, 3), stride=(1, 2), padding=1, dilation=(2, 1))
    assert cr.gradcheck(lambda t: conv_ops.im2col(t, **geom), [x])
    assert cr.gradgradcheck(lambda t: conv_ops.im2col(t, **geom) ** 2, [x])
    # <im2col(x), c> == <x, col2im(c)>: col2im is the adjoint (so it is im2col's VJP)
    cols = conv_ops.im2col(x, **geom)
    c = np.random.default_rng(0).standard_normal(cols.shape)
    back = conv_ops._col2im_forward(c, x.shape, (2, 3), (1, 2), (1, 1), (2, 1))
    assert back.shape == x.shape and cols.shape[3:] == (2, 2, 3)
    assert np.isclose((cols.numpy() * c).sum(), (x.numpy() * back).sum())
    conv = lambda t: F.conv2d(t, cr.tensor(rand(2, 2, 2, 2)), padding=1)  # noqa: E731
    assert cr.gradgradcheck(lambda t: conv(t).tanh(), [x])


# ------------------------------------------------------------------ PyTorch parity

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch parity tests need torch installed")


def torch_parity(ours, theirs, *inputs, out=lambda y: y, train=True):
    """Same weights (copied by state_dict name), same inputs, float64: outputs, input grads
    and every parameter grad must agree; the buffers (running stats) too."""
    ours.double().train(train)
    theirs.double().train(train)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    xs = [cr.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs]
    y, yt = out(ours(*xs)), out(theirs(*ts))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(y.shape)
    (y * cr.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    for x, t in zip(xs, ts):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    theirs_state = theirs.state_dict()
    for name, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), theirs_state[name].numpy(), rtol=1e-12,
                                   err_msg=name)


PARITY_CASES = {
    "linear": (lambda m: m.Linear(5, 3), [rand(4, 5)]),
    "conv": (lambda m: m.Conv2d(3, 4, 3, stride=(2, 1), padding=(1, 2)), [rand(2, 3, 7, 6)]),
    "conv_groups_dilation": (lambda m: m.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False),
                             [rand(2, 4, 7, 7)]),
    "conv_same": (lambda m: m.Conv2d(2, 2, 5, padding="same"), [rand(1, 2, 6, 6)]),
    "maxpool": (lambda m: m.MaxPool2d(3, stride=2, padding=1), [rand(2, 3, 7, 7)]),
    "maxpool_dilation": (lambda m: m.MaxPool2d(2, stride=1, dilation=2), [rand(1, 2, 5, 5)]),
    "avgpool": (lambda m: m.AvgPool2d(3, stride=2, padding=1), [rand(2, 2, 6, 6)]),
    "avgpool_exclude_pad": (lambda m: m.AvgPool2d(3, stride=2, padding=1,
                                                  count_include_pad=False), [rand(1, 2, 5, 5)]),
    "batchnorm1d_3d": (lambda m: m.BatchNorm1d(3), [rand(4, 3, 5)]),
    "batchnorm2d": (lambda m: m.BatchNorm2d(3), [rand(4, 3, 2, 3)]),
    "layernorm": (lambda m: m.LayerNorm(6), [rand(3, 4, 6)]),
    "embedding": (lambda m: m.Embedding(7, 3, padding_idx=2), [np.array([[1, 2, 6], [2, 0, 1]])]),
    "gelu": (lambda m: m.GELU(), [rand(3, 5, low=-4, high=4)]),
    "gelu_tanh": (lambda m: m.GELU(approximate="tanh"), [rand(3, 5, low=-4, high=4)]),
    "leaky_relu": (lambda m: m.LeakyReLU(0.1), [rand(3, 5)]),
    "softmax": (lambda m: m.Softmax(dim=1), [rand(3, 5)]),
    "log_softmax": (lambda m: m.LogSoftmax(dim=-1), [rand(3, 5)]),
    "flatten": (lambda m: m.Flatten(), [rand(2, 3, 4)]),
    "mlp": (lambda m: m.Sequential(m.Linear(4, 8), m.Tanh(), m.Linear(8, 8), m.Sigmoid(),
                                   m.Linear(8, 3), m.ReLU()), [rand(5, 4)]),
    "cnn": (lambda m: m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(),
                                   m.MaxPool2d(2), m.Flatten(), m.Linear(4 * 3 * 3, 5)),
            [rand(3, 1, 6, 6)]),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(PARITY_CASES))
def test_layer_matches_torch(name):
    make, inputs = PARITY_CASES[name]
    cr.manual_seed(0)
    torch_parity(make(nn), make(torch.nn), *inputs)


@needs_torch
def test_batchnorm_running_stats_and_eval_match_torch():
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    for step in range(3):      # three training batches update the running statistics
        torch_parity(ours, theirs, rand(4 + step, 3, 2, 2) + step)
        ours.zero_grad()
        theirs.zero_grad()
    assert int(ours.num_batches_tracked.item()) == 3
    torch_parity(ours, theirs, rand(2, 3, 2, 2), train=False)
    cum, cum_t = nn.BatchNorm1d(2, momentum=None), torch.nn.BatchNorm1d(2, momentum=None)
    for step in range(3):      # momentum=None: cumulative average
        torch_parity(cum, cum_t, rand(5, 2) * (step + 1))


@needs_torch
@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_matches_torch(batch_first):
    cr.manual_seed(0)
    ours = nn.LSTM(3, 4, num_layers=2, batch_first=batch_first)
    theirs = torch.nn.LSTM(3, 4, num_layers=2, batch_first=batch_first)
    x = rand(2, 5, 3)
    for pick in (lambda r: r[0], lambda r: r[1][0], lambda r: r[1][1]):
        ours.zero_grad()
        theirs.zero_grad()
        torch_parity(ours, theirs, x, out=pick)


@needs_torch
def test_lstm_initial_state_and_rnn_relu_match_torch():
    cr.manual_seed(0)
    ours, theirs = nn.LSTM(2, 3), torch.nn.LSTM(2, 3)
    h0, c0 = rand(1, 4, 3), rand(1, 4, 3) * 0.5

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = ours

        def forward(self, x, h, c):
            return self.lstm(x, (h, c))[0]

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = theirs

        def forward(self, x, h, c):
            return self.lstm(x, (h, c))[0]
    torch_parity(Ours(), Theirs(), rand(6, 4, 2), h0, c0)
    rnn_ours = nn.RNN(3, 4, nonlinearity="relu", batch_first=True)
    rnn_theirs = torch.nn.RNN(3, 4, nonlinearity="relu", batch_first=True)
    torch_parity(rnn_ours, rnn_theirs, rand(2, 4, 3), out=lambda r: r[0])


@needs_torch
def test_unbatched_inputs_match_torch():
    cr.manual_seed(0)
    torch_parity(nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3), rand(2, 5, 5))
    torch_parity(nn.LSTM(2, 3), torch.nn.LSTM(2, 3), rand(4, 2), out=lambda r: r[0])


# ------------------------------------------------------------------ behaviour and errors

def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    x = cr.ones(200, 100)
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    assert np.allclose(y[kept], 1 / 0.75)
    cr.manual_seed(5)
    a = drop(x).numpy()
    cr.manual_seed(5)
    assert np.array_equal(a, drop(x).numpy())     # seeded by cr.manual_seed
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).numpy(), x.numpy())
    assert np.all(nn.Dropout(1.0)(x).numpy() == 0)


def test_batchnorm_eval_uses_running_stats():
    bn = nn.BatchNorm1d(2, momentum=1.0)     # running stats become the last batch's
    x = cr.tensor(rand(50, 2) * 3 + 1)
    y_train = bn(x)
    mean = x.numpy().mean(0)
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), x.numpy().var(0, ddof=1), rtol=1e-5)
    bn.eval()
    y_eval = bn(x)
    assert not np.allclose(y_train.numpy(), y_eval.numpy())   # unbiased vs biased variance
    np.testing.assert_allclose(y_eval.numpy(), (x.numpy() - mean) / np.sqrt(
        x.numpy().var(0, ddof=1) + 1e-5), rtol=1e-4, atol=1e-5)
    before = bn.running_mean.numpy().copy()
    bn(cr.tensor(rand(4, 2)))
    assert np.array_equal(before, bn.running_mean.numpy())    # eval leaves them alone
    with pytest.raises(ShapeError, match="more than one value"):
        bn.train()(cr.ones(1, 2))


def test_layer_errors_name_the_layer_and_sizes():
    model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 10))
    with pytest.raises(ShapeError, match=r"Sequential\.0 \(Linear 32->128\) got input with 64 "
                                         r"features"):
        model(cr.ones(2, 64))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())

        def forward(self, x):
            return self.features(x)
    with pytest.raises(ShapeError, match=r"Net\.features\.0 \(Conv2d 3->8, 3x3\) got input "
                                         r"with 1 channels"):
        Net()(cr.ones(1, 1, 8, 8))
    with pytest.raises(ShapeError, match=r"Net\.features\.0 .*shape \(2, 64\).*reshape"):
        Net()(cr.ones(2, 64))
    with pytest.raises(DTypeError, match="x.float()"):
        nn.Linear(2, 2)(cr.tensor([[1, 2]]))
    with pytest.raises(ShapeError, match="does not fit"):
        nn.Conv2d(1, 1, 5)(cr.ones(1, 1, 3, 3))
    with pytest.raises(IndexError_, match="index 9 is out of range for a table of 4"):
        nn.Embedding(4, 2)(cr.tensor([1, 9]))
    with pytest.raises(DTypeError, match="integers"):
        nn.Embedding(4, 2)(cr.tensor([1.0]))


@needs_torch
def test_gelu_default_is_the_exact_erf_form():
    x = np.linspace(-3, 3, 13)
    ref = torch.nn.functional.gelu(torch.tensor(x)).numpy()
    np.testing.assert_allclose(F.gelu(cr.tensor(x)).numpy(), ref, rtol=1e-14, atol=1e-15)
    approx = F.gelu(cr.tensor(x), approximate="tanh").numpy()
    assert np.abs(approx - ref).max() > 1e-6         # the tanh form is a different function


def test_second_derivatives_through_layers():
    """Every layer is built from primitives whose VJPs are differentiable: grad of grad."""
    w, b = cr.tensor(rand(3)), cr.tensor(rand(3) * 0.1)
    assert cr.gradgradcheck(lambda x: F.gelu(F.layer_norm(x, 3, w, b)), [cr.tensor(rand(2, 3))])
    assert cr.gradgradcheck(
        lambda x: F.cross_entropy(x, cr.tensor([0, 2]), label_smoothing=0.1),
        [cr.tensor(rand(2, 3))])
    assert cr.gradgradcheck(lambda x: F.binary_cross_entropy_with_logits(
        x, cr.tensor([[0.0, 1.0, 0.5]] * 2, dtype=cr.float64)), [cr.tensor(rand(2, 3))])
