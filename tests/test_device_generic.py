"""The compute core is device-generic: every sample of every primitive (tests/primitive_specs.py)
and every composite gives, on the "check" device, the same forward values, first-order
gradients (backward) and second-order gradients (grad of grad) as on the CPU, bit for bit
(NumPy computes underneath both), and everything it makes lives on the device.

The check device (chainrule.devices.check) wraps NumPy arrays so that they refuse what CuPy
refuses (implicit host conversion, being combined with a host array), and computes with NumPy
underneath, so values agree exactly, and a host array that sneaks in fails loudly.
An array that silently stays on the host is caught too: every op run on device inputs must
give a device result, and every output and gradient is checked for its device.
"""
import functools

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import backend
from chainrule.ops import REGISTRY, registry

from primitive_specs import SPECS, all_composites, sample_id

DEVICE = "check"

SAMPLES = [(n, i) for n in SPECS for i in range(len(SPECS[n].samples))]
COMPOSITES = all_composites()
COMPOSITE_KEYS = [("composite", j) for j in range(len(COMPOSITES))]
_make = cr.tensor     # the real constructor (the device runs patch cr.tensor, below)


def _sample(key):
    """(name, sample) of a key: (primitive name, index) or ("composite", index)."""
    name, i = key
    return COMPOSITES[i] if name == "composite" else (name, SPECS[name].samples[i])


def _leaves(sample, device):
    """The sample's differentiable inputs as float64 leaves on `device`."""
    out = []
    for a in sample.args:
        t = _make(a, dtype=cr.float64)
        out.append((t if device == "cpu" else t.to(device).detach()).requires_grad_())
    return out


def _tensors_on(device):
    """cr.tensor as a sample's closure sees it during a device run: the tensors a sample makes
    itself (the x of a scatter sample, BCE's hard targets, a conv's fixed weight, class labels)
    are made on the device, as a default device would make them. (NumPy arrays a closure
    holds, an index or a where condition, stay on the host: they are moved where used.)"""
    def tensor(data, *args, requires_grad=False, **kwargs):
        t = _make(data, *args, **kwargs).to(device).detach()
        return t.requires_grad_() if requires_grad else t
    return tensor


class _Watch:
    """An op hook noting, during a device run, the primitives that computed on the device and
    any op whose result fell back to the host."""

    def __init__(self):
        self.ran, self.on_host = set(), []

    def __call__(self, kind, fn, inputs, params, result):
        if kind not in ("apply", "compute"):
            return
        name = getattr(fn, "name", getattr(fn, "__name__", repr(fn)))
        if backend.device_of(result._data).type == DEVICE:
            self.ran.add(name)
        elif any(backend.device_of(t._data).type == DEVICE for t in inputs):
            self.on_host.append(name)


def _seeds(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _run(sample, device, second_order):
    """The output, the leaves' .grad from backward(g), and with second_order the first
    gradients under create_graph ("firsts") and the gradients of Σ firsts·v ("grads2")."""
    xs = _leaves(sample, device)
    out = sample.fn(*xs)
    g = _make(_seeds([out.shape], 1)[0], dtype=out.dtype).to(device)
    out.backward(g, retain_graph=second_order)
    grads = [x.grad for x in xs]
    result = {"out": out, "grads": grads, "grads2": []}
    if second_order:
        for x in xs:
            x.grad = None
        firsts = cr.autograd.grad(out, xs, grad_outputs=g, create_graph=True, allow_unused=True)
        vs = _seeds([x.shape for x in xs], 2)
        live = [(f, v) for f, v in zip(firsts, vs) if f is not None and f.requires_grad]
        if live:
            s = sum((f * _make(v, dtype=f.dtype).to(device)).sum() for f, v in live)
            result["grads2"] = list(cr.autograd.grad(s, xs, allow_unused=True))
        result["firsts"] = list(firsts)
    return result


@functools.lru_cache(maxsize=None)
def _both(key, second_order):
    """The sample run on the CPU and on the check device (cached: the completeness test reads
    the device runs of the tests before it rather than repeating them)."""
    return _compare(_sample(key)[1], second_order, own_tensors_on_device=True)


def _compare(sample, second_order, own_tensors_on_device=False):
    cpu = _run(sample, "cpu", second_order)
    watch = _Watch()
    registry.op_hooks.append(watch)
    saved = cr.tensor
    if own_tensors_on_device:
        cr.tensor = _tensors_on(DEVICE)
    try:
        dev = _run(sample, DEVICE, second_order)
    finally:
        cr.tensor = saved
        registry.op_hooks.remove(watch)
    return cpu, dev, watch


def _same(label, dev, cpu):
    """`dev` (a tensor or None) lives on the device and equals `cpu` (its CPU counterpart)."""
    if cpu is None:
        assert dev is None, f"{label}: a gradient on the device, None on the CPU"
        return
    assert dev is not None, f"{label}: None on the device, a gradient on the CPU"
    assert dev.device.type == DEVICE, f"{label}: on {dev.device}, not on the {DEVICE} device"
    assert type(dev._data) is backend.kind(DEVICE).array_type, f"{label}: {type(dev._data)}"
    assert dev.dtype == cpu.dtype and dev.shape == cpu.shape, label
    np.testing.assert_array_equal(dev.cpu().numpy(), cpu.numpy(), err_msg=label)


def _check(key, second_order):
    _agree(*_both(key, second_order))


def _agree(cpu, dev, watch):
    assert not watch.on_host, f"ops gave host results from device inputs: {watch.on_host}"
    _same("forward", dev["out"], cpu["out"])
    for part in ("grads", "firsts", "grads2"):
        assert len(dev.get(part, ())) == len(cpu.get(part, ())), part
        for i, (d, c) in enumerate(zip(dev.get(part, ()), cpu.get(part, ()))):
            _same(f"{part}[{i}]", d, c)


@pytest.mark.parametrize("key", SAMPLES, ids=[sample_id(_sample(k)) for k in SAMPLES])
def test_primitive_sample_on_device(key):
    _check(key, SPECS[key[0]].second_order)


@pytest.mark.parametrize("key", COMPOSITE_KEYS, ids=[sample_id(i) for i in COMPOSITES])
def test_composite_on_device(key):
    _check(key, True)


def test_every_primitive_ran_on_the_device():
    """Each registered primitive computed on the device in at least one sample (its forward,
    or a rule's, as scatter_add and col2im are reached)."""
    ran = set()
    for key in SAMPLES:
        ran |= _both(key, SPECS[key[0]].second_order)[2].ran
    ran |= _moved_both_ways()
    missing = sorted(set(REGISTRY) - ran)
    assert not missing, f"primitives that never computed on the {DEVICE} device: {missing}"


def _moved_both_ways():
    """to_device has no sample (the runs above move their inputs with it): a CPU leaf through
    a device computation gets a CPU gradient, a device leaf through a CPU one a device one."""
    watch = _Watch()
    x = _make([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    z = _make([3.0, -1.0], dtype=cr.float64).to(DEVICE).detach().requires_grad_()
    registry.op_hooks.append(watch)
    try:
        (x.to(DEVICE) * z).sum().backward()
        (z.cpu() * x).sum().backward()
    finally:
        registry.op_hooks.remove(watch)
    assert x.grad.device.type == "cpu" and z.grad.device.type == DEVICE
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, -2.0])
    np.testing.assert_array_equal(z.grad.cpu().numpy(), [2.0, 4.0])
    return watch.ran


# ---- beyond the samples: what the core does with host operands, checks, updates, hooks ----
class _Case:
    """A sample of one's own: the differentiable inputs and the function."""

    def __init__(self, args, fn):
        self.args, self.fn = args, fn


def _same_on_both(fn, *args, second_order=True):
    """fn's values and first and second-order gradients agree on the CPU and the device;
    tensors that fn makes itself stay on the host (host operands beside device data)."""
    _agree(*_compare(_Case(args, fn), second_order))



LABELS = np.array([2, 0, 3])
MASK = np.array([True, False, True])


@pytest.mark.parametrize("case", [
    ("index with a CPU int tensor", lambda x: x[cr.tensor([0, 2, 2])]),
    ("index with a CPU bool tensor", lambda x: x[cr.tensor(MASK)] * 2.0),
    ("index with a NumPy array and a slice", lambda x: x[np.array([2, 1]), 1:]),
    ("where with a NumPy condition", lambda x: cr.where(MASK[:, None], x, 0.5)),
    ("where with a CPU bool tensor", lambda x: cr.where(cr.tensor(MASK)[:, None], x, x * x)),
    ("gather with a CPU index", lambda x: cr.gather(x, 1, cr.tensor([[1], [0], [3]]))),
    ("fused cross-entropy, NumPy labels", lambda x: cr.ops.fused.softmax_cross_entropy(
        x, LABELS)),
    ("fused cross-entropy, CPU label tensor", lambda x: cr.ops.fused.softmax_cross_entropy(
        x, cr.tensor(LABELS), reduction="none")),
], ids=lambda c: c[0])
def test_host_indices_labels_and_conditions_beside_device_data(case):
    """NOTE: as PyTorch lets a CPU index tensor index a CUDA tensor, host indices, masks, where
    conditions and (more leniently than PyTorch) class labels are moved to the data's device."""
    _same_on_both(case[1], np.random.default_rng(3).uniform(-2, 2, (3, 4)))


@pytest.mark.parametrize("case", [
    ("sort and topk", lambda x: cr.sort(x, 1)[0] + cr.topk(x, 2, 0)[0].sum()),
    ("masked_fill, repeat, narrow", lambda x: cr.masked_fill(x, x > 0.5, 0.0).repeat(2, 1)
     + cr.narrow(x, 0, 1, 2).sum()),
    ("norm, var, logsumexp", lambda x: x.norm() + x.var(0) + x.logsumexp(1).sum()),
    ("max/min with indices, amax", lambda x: cr.max(x, 1)[0] + x.amin(0).sum()),
    ("conv2d groups=2, avg_pool2d without pad counts", lambda x: F.avg_pool2d(
        F.conv2d(x.reshape(1, 2, 2, 3), cr.tensor(np.ones((2, 1, 2, 2))).to(x.device), groups=2,
                 padding=1), 2, stride=1, padding=1, count_include_pad=False)),
    ("max_pool2d with padding (the windows path)", lambda x: F.max_pool2d(
        x.reshape(1, 1, 3, 4), 2, stride=1, padding=1)),
], ids=lambda c: c[0])
def test_composed_functions_on_device(case):
    _same_on_both(case[1], np.random.default_rng(4).permutation(12).reshape(3, 4) * 0.3 - 1.6)


def test_device_arrays_beside_tensors_keep_their_dtype():
    """A raw float64 device array lifted into an op (as rules do with masks and shifts) is
    neither rounded to the default float32 nor moved."""
    x = cr.tensor([1.0], dtype=cr.float64).to(DEVICE)
    shift = cr.tensor([0.1], dtype=cr.float64).to(DEVICE)._data
    y = x - shift
    assert y.dtype == cr.float64 and y.device.type == DEVICE
    assert y.cpu().tolist() == [1.0 - 0.1]


def test_values_outside_the_graph_stay_on_the_device():
    """Comparisons, argmax, all/any, isnan...: computed on the device, never on the host."""
    x = cr.tensor([[1.0, -2.0], [3.0, float("nan")]]).to(DEVICE)
    results = [x > 0, x == x, cr.isnan(x), cr.isfinite(x), x.argmax(1), x.argmin(),
               x.all(), x.any(1), cr.sort(x[0])[1], (x > 0).sum(), x[0].long(), cr.eq(x, 1.0)]
    for r in results:
        assert r.device.type == DEVICE, r
    host = [r.cpu().tolist() for r in results]
    xc = x.cpu()
    expect = [xc > 0, xc == xc, cr.isnan(xc), cr.isfinite(xc), xc.argmax(1), xc.argmin(),
              xc.all(), xc.any(1), cr.sort(xc[0])[1], (xc > 0).sum(), xc[0].long(),
              cr.eq(xc, 1.0)]
    assert host == [e.tolist() for e in expect]
    assert cr.equal(x[0], x[0]) and cr.allclose(x[0], x[0] + 1e-9)
    data = cr.tensor([1.0, 2.0, 1.0, 4.0])
    for bins in (3, cr.tensor([0.0, 2.0, 5.0])):
        for t, expect in zip(cr.histogram(data.to(DEVICE), bins=bins.to(DEVICE) if isinstance(
                bins, cr.Tensor) else bins), cr.histogram(data, bins=bins)):
            assert t.device.type == DEVICE and t.cpu().tolist() == expect.tolist()
    for kw in ({"bins": 4, "min": 0, "max": 3}, {"bins": 3}):
        t = cr.histc(data.to(DEVICE), **kw)
        assert t.device.type == DEVICE and t.cpu().tolist() == cr.histc(data, **kw).tolist()


@pytest.mark.parametrize("second", [False, True], ids=["gradcheck", "gradgradcheck"])
def test_gradcheck_on_device_inputs(second):
    check = cr.gradgradcheck if second else cr.gradcheck
    x = cr.tensor(np.random.default_rng(5).uniform(0.5, 2, (2, 3))).to(DEVICE)
    assert check(lambda t: (t.log() * t.sin()).sum(1) + F.softmax(t, 1)[:, 0], [x])


def test_in_place_updates_on_device():
    """Recorded in-place updates (+=, setitem with host indices, masked_fill_, copy_ from the
    host) and unrecorded ones (under no_grad, random fills) keep tensors on the device."""
    def f(x):
        y = x * 1.0
        y += x * x
        y[0] = 5.0
        y[cr.tensor([1, 2]), 1:3] *= 2.0
        y.masked_fill_(cr.tensor(MASK)[:, None], 0.5)
        z = y[:, 1]
        z -= 1.0
        return y * x
    _same_on_both(f, np.random.default_rng(6).uniform(-2, 2, (3, 4)))
    t = cr.zeros(2, 3, dtype=cr.float64).to(DEVICE)
    with cr.no_grad():
        t.copy_(cr.tensor(np.arange(6.0).reshape(2, 3)))   # a host source (PyTorch allows it)
        t[np.array([1])] += 1.0
        t.normal_()
        t.uniform_(0.0, 1.0)
        t.zero_()
        t.add_(cr.tensor([1.0, 2.0, 3.0], dtype=cr.float64).to(DEVICE), alpha=2.0)
    assert t.device.type == DEVICE and t.cpu().tolist() == [[2.0, 4.0, 6.0]] * 2
    with pytest.raises(cr.errors.DeviceError), cr.no_grad():    # as in PyTorch
        t += cr.ones(2, 3, dtype=cr.float64)


def test_grad_accumulation_hooks_and_retain_grad_on_device():
    x = cr.tensor([1.0, -2.0, 3.0]).to(DEVICE).detach().requires_grad_()
    seen = []
    x.register_hook(lambda g: seen.append(g) or g * 2.0)
    y = x * x
    y.retain_grad()
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    for t in (x.grad, y.grad, seen[0]):
        assert t.device.type == DEVICE
    assert x.grad.cpu().tolist() == [8.0, -16.0, 24.0] and y.grad.cpu().tolist() == [2.0] * 3


def test_custom_function_on_device():
    class Cube(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            return x ** 3, x.argmax()

        @staticmethod
        def backward(ctx, g, g_index):     # g_index: zeros made for the integer output
            assert g_index.device == g.device
            (x,) = ctx.saved_tensors
            return g * 3.0 * x * x, None
    _same_on_both(lambda x: Cube.apply(x, 2)[0] * x, np.array([0.5, -1.0, 2.0]))


def training_step(model, opt):
    """A plain classifier step: zero the grads, cross-entropy, backward, update."""
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def test_compiled_training_step_on_device_equals_eager():
    """cr.compile of an MLP's training step (Linear, ReLU, cross-entropy, SGD) on the device
    replays to the losses and parameters of the eager steps."""
    rng = np.random.default_rng(7)
    batches = [(rng.normal(size=(8, 5)), rng.integers(0, 3, 8)) for _ in range(5)]

    def setup():
        cr.manual_seed(0)
        model = cr.nn.Sequential(cr.nn.Linear(5, 16), cr.nn.ReLU(), cr.nn.Linear(16, 3))
        model = model.double().to(DEVICE)
        opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, training_step(model, opt)

    (m1, eager), (m2, step), (_, checked) = setup(), setup(), setup()
    step, checked = cr.compile(step), cr.compile(checked, check=2)
    losses = [[f(cr.tensor(x, dtype=cr.float64).to(DEVICE), cr.tensor(y).to(DEVICE))
               for x, y in batches] for f in (eager, step, checked)]
    assert step.stats["replays"] == len(batches) - 2, step.stats
    assert checked.stats["checked"] == 2, checked.stats      # replays compared with eager runs
    for loss in losses[1]:
        assert loss.device.type == DEVICE
    assert [v.item() for v in losses[1]] == [v.item() for v in losses[0]]
    assert [v.item() for v in losses[2]] == [v.item() for v in losses[0]]
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert p2.device.type == DEVICE and p2.grad.device.type == DEVICE
        np.testing.assert_array_equal(p2.cpu().numpy(), p1.cpu().numpy())
    # the guards see the device: host inputs are not replayed through the device program
    x, y = batches[0]
    with pytest.raises(cr.errors.DeviceError):
        step(cr.tensor(x, dtype=cr.float64), cr.tensor(y))


class _TinyLM(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.lstm = cr.nn.Embedding(20, 8), cr.nn.LSTM(8, 16, batch_first=True)
        self.out = cr.nn.Linear(16, 20)

    def forward(self, x):
        return self.out(self.lstm(self.emb(x))[0]).reshape(-1, 20)


def _conv_net():
    nn = cr.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(36, 10))


@pytest.mark.parametrize("case", ["conv+batchnorm+dropout", "embedding+lstm"])
def test_compiled_steps_of_bigger_models_on_device_equal_eager_on_cpu(case):
    """Eager and compiled Adam steps of a CNN (BatchNorm, max-pool, dropout: fresh masks on
    every replay) and an embedding LSTM give, on the device, the CPU's eager losses exactly."""
    make = _conv_net if case.startswith("conv") else _TinyLM

    def losses(device, compiled):
        cr.manual_seed(0)
        model = make().double().to(device)
        opt = cr.optim.Adam(model.parameters(), lr=1e-2)
        step = training_step(model, opt)
        run = cr.compile(step) if compiled else step
        cr.manual_seed(1)
        batches = [(cr.randn(16, 1, 8, 8, dtype=cr.float64), cr.randint(0, 10, (16,)))
                   if make is _conv_net else (cr.randint(0, 20, (4, 6)), cr.randint(0, 20, (24,)))
                   for _ in range(5)]
        cr.manual_seed(2)
        return [run(x.to(device), y.to(device)).item() for x, y in batches]
    want = losses("cpu", compiled=False)
    assert losses(DEVICE, compiled=False) == want
    assert losses(DEVICE, compiled=True) == want
