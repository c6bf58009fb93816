"""cr.compile: a whole training step captured once and replayed (docs/static_graphs.md).

Compiled and eager runs from the same seed must agree (float64 to 1e-12, float32 to 1e-6; in
practice bit for bit: the replay calls the very same functions) over 20 steps for an MLP, a
CNN (conv, pool, BatchNorm, Dropout), an LSTM and an Embedding model, with SGD (momentum,
Nesterov, weight decay), Adam, AdamW and RMSprop and a schedule that changes the learning rate
every step; the guards recapture or fall back when the call changes; what cannot be replayed
fails with CompileError (or runs eagerly with fallback=True); randomness stays random.
"""
import warnings

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.errors import CompileError
from chainrule.static import CompileWarning

STEPS = 20
TOL = {np.float64: 1e-12, np.float32: 1e-6}


# ---------------------------------------------------------------- models and data

class CNN(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, dtype=dtype)
        self.bn = nn.BatchNorm2d(4, dtype=dtype)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4 * 3 * 3, 5, dtype=dtype)

    def forward(self, x):
        x = self.pool(self.bn(self.conv(x)).relu())
        return self.fc(self.drop(x.flatten(1)))


class LSTMNet(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.lstm = nn.LSTM(3, 6, num_layers=2, batch_first=True, dtype=dtype)
        self.fc = nn.Linear(6, 4, dtype=dtype)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class EmbeddingNet(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.emb = nn.Embedding(11, 5, padding_idx=0, dtype=dtype)
        self.fc = nn.Linear(5, 11, dtype=dtype)

    def forward(self, idx):
        return self.fc(self.emb(idx).tanh()).reshape(-1, 11)


def make_model(kind, dtype):
    if kind == "mlp":
        return nn.Sequential(nn.Linear(6, 10, dtype=dtype), nn.Tanh(), nn.Dropout(0.2),
                             nn.Linear(10, 3, dtype=dtype))
    return {"cnn": CNN, "lstm": LSTMNet, "embedding": EmbeddingNet}[kind](dtype)


def make_batch(kind, n, dtype, rng):
    if kind == "mlp":
        return rng.standard_normal((n, 6)).astype(dtype), rng.integers(0, 3, n)
    if kind == "cnn":
        return rng.standard_normal((n, 1, 8, 8)).astype(dtype), rng.integers(0, 5, n)
    if kind == "lstm":
        return rng.standard_normal((n, 5, 3)).astype(dtype), rng.integers(0, 4, n)
    return rng.integers(0, 11, (n, 7)), rng.integers(0, 11, n * 7)


OPTIMIZERS = {
    "sgd": lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: cr.optim.Adam(p, lr=0.01),
    "adamw": lambda p: cr.optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: cr.optim.RMSprop(p, lr=0.01, momentum=0.5),
}


def training_step(kind, dtype, opt_name, seed=0):
    """(model, optimizer, step): the step zeroes, runs forward, backward, the update and a
    schedule that changes the learning rate on every call."""
    cr.manual_seed(seed)
    model = make_model(kind, dtype)
    opt = OPTIMIZERS[opt_name](model.parameters())
    sched = cr.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        return loss
    return model, opt, step


def run(step, batches, seed=5):
    cr.manual_seed(seed)      # dropout draws from chainrule's generator
    return [step(cr.tensor(x), cr.tensor(y)).item() for x, y in batches]


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
               for u, v in zip(a, b))


def state_arrays(model, opt):
    arrays = [t._data for t in model.state_dict().values()]
    for per in opt.state.values():
        arrays += [v for v in per.values() if isinstance(v, np.ndarray)]
    return arrays


# ---------------------------------------------------------------- compiled = eager

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm", "embedding"])
def test_compiled_training_equals_eager(kind, opt_name, dtype):
    rng = np.random.default_rng(1)
    batches = [make_batch(kind, 4, dtype, rng) for _ in range(STEPS)]
    m1, o1, eager = training_step(kind, dtype, opt_name)
    m2, o2, step = training_step(kind, dtype, opt_name)
    step = cr.compile(step)
    losses_e, losses_c = run(eager, batches), run(step, batches)
    assert step.stats["replays"] == STEPS - 2, step.stats     # call 1 eager, call 2 captures
    assert max_diff(losses_e, losses_c) <= TOL[dtype]
    assert max_diff(state_arrays(m1, o1), state_arrays(m2, o2)) <= TOL[dtype]
    # no traced array left behind in the state (they would slow every later operation)
    grads = [p.grad._data for p in m2.parameters() if p.grad is not None]
    assert all(type(a) is np.ndarray for a in state_arrays(m2, o2) + grads)
    group = o2.param_groups[0]
    assert o1.param_groups[0]["lr"] == group["lr"] < group["initial_lr"] * 0.9 ** 10


def test_replay_makes_no_tensor_or_node_per_operation(monkeypatch):
    m, o, step = training_step("lstm", np.float32, "sgd")
    step = cr.compile(step)
    x, y = make_batch("lstm", 4, np.float32, np.random.default_rng(0))
    x, y = cr.tensor(x), cr.tensor(y)
    step(x, y), step(x, y)
    made = []
    real = cr.autograd.Node.__init__
    monkeypatch.setattr(cr.autograd.Node, "__init__",
                        lambda self, *a: made.append(1) or real(self, *a))
    step(x, y)
    assert not made and step.stats["replays"] == 1


def test_dropout_redraws_on_every_replay_and_matches_eager():
    x = cr.ones(4, 50)
    f = cr.compile(lambda t: F.dropout(t, 0.5) * 1.0)
    cr.manual_seed(3)
    compiled = [f(x).numpy().copy() for _ in range(5)]
    cr.manual_seed(3)
    eager = [F.dropout(x, 0.5).numpy() for _ in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(compiled, eager))
    assert not np.array_equal(compiled[3], compiled[4])      # two replays, two masks


def test_inference_function_under_no_grad():
    cr.manual_seed(0)
    model = make_model("cnn", np.float32).eval()
    f = cr.compile(model)
    x = cr.randn(3, 1, 8, 8)
    with cr.no_grad():
        outs = [f(x).numpy().copy() for _ in range(4)]
        want = model(x).numpy()
    assert f.stats["replays"] == 2
    assert all(np.array_equal(o, want) for o in outs)


def test_function_returning_a_graph_runs_eagerly_with_a_warning():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    f = cr.compile(lambda x: (w * x).sum())
    with pytest.warns(CompileWarning, match="still has a graph"):
        for _ in range(3):
            out = f(cr.ones(2))
    out.backward()                       # eager results keep their graph
    assert w.grad.tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- what the step may do

def _twins(body, seed=0):
    """Two identical models and a step made by `body(model, opt)`; the second compiled."""
    out = []
    for _ in range(2):
        cr.manual_seed(seed)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = cr.optim.SGD(model.parameters(), lr=0.1)
        out.append((model, opt, body(model, opt)))
    return out[0], (out[1][0], out[1][1], cr.compile(out[1][2]))


def _data(n=10, size=5, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 4)).astype(np.float32), rng.integers(0, 3, size))
            for _ in range(n)]


def _same(a, b, batches=None, captures=1):
    batches = batches or _data()
    assert max_diff(run(a[2], batches), run(b[2], batches)) == 0
    assert max_diff(state_arrays(a[0], a[1]), state_arrays(b[0], b[1])) == 0
    assert b[2].stats["captures"] == captures
    assert b[2].stats["replays"] == len(batches) - 1 - captures


def test_manual_sgd_under_no_grad_is_recorded():
    def body(model, opt):
        params = list(model.parameters())

        def step(x, y):
            for p in params:
                p.grad = None
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            with cr.no_grad():
                for p in params:
                    p -= 0.1 * p.grad
            return loss
        return step
    _same(*_twins(body))


def test_gradient_clipping_and_autograd_grad():
    def clipped(model, opt):
        def step(x, y):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            cr.optim.clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
            return model[0].weight.grad.sum()
        return step

    def by_grad(model, opt):
        params = list(model.parameters())

        def step(x, y):
            loss = F.cross_entropy(model(x), y)
            with cr.no_grad():
                for p, g in zip(params, cr.autograd.grad(loss, params)):
                    p -= 0.05 * g
            return loss
        return step
    _same(*_twins(clipped))
    _same(*_twins(by_grad))


def test_gradients_accumulated_over_two_backward_passes():
    def body(model, opt):
        def step(x, y):
            opt.zero_grad()
            F.cross_entropy(model(x[:2]), y[:2]).backward()
            loss = F.cross_entropy(model(x[2:]), y[2:])
            loss.backward()                       # adds into .grad
            opt.step()
            return loss
        return step
    _same(*_twins(body))


def test_cross_entropy_path_is_rechecked_for_each_batch():
    """Labels all valid take the fused loss; ignore_index labels need the general path: the
    choice is a guard, not baked in."""
    batches = _data()
    for x, y in batches[5:]:
        y[0] = -100                     # ignore_index
    a, b = _twins(_plain_step)
    _same(a, b, batches, captures=2)          # the fused loss, then the general one


# ---------------------------------------------------------------- guards

def test_guards_recapture_or_replay_with_the_right_results():
    def make(seed=0):
        cr.manual_seed(seed)
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(8, 3))
        opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, opt, _plain_step(model, opt)
    a, b = make(), make()
    b = (b[0], b[1], cr.compile(b[2]))
    epoch = _data(6) + _data(1, size=3, seed=1)           # a smaller last batch

    def both(action):
        results = []
        for model, opt, step in (a, b):
            cr.manual_seed(9)
            results.append(action(model, opt, step))
        assert max_diff(results[0], results[1]) == 0, action.__name__
        assert max_diff(state_arrays(a[0], a[1]), state_arrays(b[0], b[1])) == 0
        return b[2].stats["captures"], len(b[2].variants)

    def train(model, opt, step):
        return [step(cr.tensor(x), cr.tensor(y)).item() for x, y in epoch]

    def evaluate_between(model, opt, step):
        model.eval()
        out = [F.cross_entropy(model(cr.tensor(x)), cr.tensor(y)).item() for x, y in epoch]
        model.train()
        return out + train(model, opt, step)

    def replace_parameter(model, opt, step):
        model[0].weight = nn.Parameter(model[0].weight._data * 0.5)
        return train(model, opt, step)

    def change_lr(model, opt, step):
        opt.param_groups[0]["lr"] = 0.01
        return train(model, opt, step)

    def toggle_requires_grad(model, opt, step):
        model[4].weight.requires_grad_(False)
        out = train(model, opt, step)
        model[4].weight.requires_grad_(True)
        return out + train(model, opt, step)

    def step_in_eval_mode(model, opt, step):
        model.eval()
        out = train(model, opt, step)
        model.train()
        return out

    assert both(train) == (2, 2)                        # full batches, then the smaller one
    assert both(evaluate_between) == (2, 2)             # eval() outside the step: replays
    assert both(replace_parameter) == (4, 4)            # new parameter: both shapes again
    assert both(change_lr) == (4, 4)                    # lr is read by the optimizer call
    captures, _ = both(toggle_requires_grad)
    assert captures == 6                                # frozen: a new backward schedule
    captures, _ = both(step_in_eval_mode)
    assert captures == 8


def test_python_argument_values_are_guarded():
    f = cr.compile(lambda x, scale: x * scale)
    x = cr.ones(2)
    assert [f(x, s).tolist() for s in (2.0, 2.0, 2.0, 3.0, 3.0)][-1] == [3.0, 3.0]
    assert f.stats["captures"] == 2


def test_too_many_variants_fall_back_with_one_warning():
    f = cr.compile(lambda x: (x * 2).sum(), max_variants=2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        values = [f(cr.ones(n)).item() for n in (1, 2, 3, 4, 5, 6, 5)]
    assert values == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 10.0]
    assert len([w for w in seen if issubclass(w.category, CompileWarning)]) == 1
    assert "fits this call" in str(seen[0].message) and "shape" in str(seen[0].message)


def test_state_read_by_identity_sees_in_place_changes():
    table = cr.tensor([1.0, 2.0])
    f = cr.compile(lambda x: x * table)
    for _ in range(3):
        f(cr.ones(2))
    with cr.no_grad():
        table *= 10
    assert f(cr.ones(2)).tolist() == [10.0, 20.0] and f.stats["replays"] == 2


# ---------------------------------------------------------------- what cannot be captured

def _value_branch(x):
    y = (x * 2).sum()
    if y > 0:
        return y
    return -y


def _item_inside(x):
    return cr.tensor((x * 2).sum().item())


def _returns_numpy(x):
    return (x * 2)._data * 3


def _data_constant(x):
    return x + cr.tensor(x._data * 2)


def _numpy_on_data(x):
    return x * cr.Tensor._wrap(x._data > 0)


def _random_draw(x):
    return x + cr.randn(*x.shape)


@pytest.mark.parametrize("fn,message", [
    (_value_branch, r"bool\(\.\.\.\).* at .*test_compile.py:\d+ \(if y > 0:\)"),
    (_item_inside, r"\.item\(\) at .*test_compile.py"),
    (_returns_numpy, "returns a NumPy array computed from tensors"),
    (_data_constant, "computed from the step's inputs or state"),
    (_numpy_on_data, "computed from the step's inputs or state"),
    (_random_draw, "random numbers were drawn outside"),
])
def test_uncapturable_functions_raise_compile_error(fn, message):
    f = cr.compile(fn)
    x = cr.tensor([1.0, -2.0, 3.0])
    f(x)                                                  # call 1: eager
    with pytest.raises(CompileError, match=message) as info:
        f(x)
    assert "fallback=True" in str(info.value)
    assert type(x._data) is np.ndarray                     # the input got its array back


@pytest.mark.parametrize("fn", [_value_branch, _item_inside, _returns_numpy, _data_constant])
def test_fallback_runs_eagerly_with_one_warning(fn):
    f = cr.compile(fn, fallback=True)
    x = cr.tensor([1.0, -2.0, 3.0])
    with pytest.warns(CompileWarning, match="runs eagerly") as seen:
        got = [f(x) for _ in range(4)]
    assert len(seen) == 1
    want = fn(x)
    assert all(np.array_equal(np.asarray(getattr(g, "data", g)), np.asarray(getattr(want, "data", want))) for g in got)
    assert f.stats["eager"] == 3 and f.stats["replays"] == 0


def test_create_graph_inside_runs_eagerly():
    def f(x):
        y = (x ** 3).sum()
        (g,) = cr.autograd.grad(y, x, create_graph=True)
        return g.sum()
    c = cr.compile(f)
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(CompileWarning, match="create_graph"):
        vals = [c(x).item() for _ in range(3)]
    assert vals == [15.0] * 3


# ---------------------------------------------------------------- check mode, graph, fit

def test_check_mode_agrees_on_a_correct_step():
    (m1, o1, s1), (m2, o2, s2) = _twins(_plain_step)
    s2 = cr.compile(s2.fn, check=3)
    _same((m1, o1, s1), (m2, o2, s2))
    assert s2.stats["checked"] == 3


def _plain_step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def test_check_mode_catches_a_stale_python_number():
    settings = {"scale": 2.0}
    f = cr.compile(lambda x: x * settings["scale"], check=2)
    x = cr.ones(2)
    f(x), f(x)
    settings["scale"] = 3.0                # read at capture, baked into the program
    with pytest.raises(CompileError, match="differs between the eager and the compiled"):
        f(x)


def test_graph_and_source_show_the_program():
    (_, _, _), (model, opt, step) = _twins(_plain_step)
    for x, y in _data(3):
        step(cr.tensor(x), cr.tensor(y))
    text = step.graph()
    for part in ("static graph of step", "input (new every call)", "0.weight",
                 "parameter (read by identity every call)", "linear(", "relu(",
                 "softmax_cross_entropy(", "backward", "linear.vjp[1]", "SGD.zero_grad()",
                 "SGD.step()", ".grad: "):
        assert part in text, part
    compile(step.source(), "<source>", "exec")


def test_fit_compile_trains_like_fit():
    X, y = cr.data.xor(80, seed=0)
    histories, weights = [], []
    for compiled in (False, True):
        cr.manual_seed(0)
        loader = cr.data.DataLoader(cr.data.TensorDataset(X, y), batch_size=16, shuffle=True)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
        opt = cr.optim.Adam(model.parameters(), 0.05)
        h = cr.train.fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=3, progress=False,
                         clip_grad_norm=1.0, compile=compiled)
        histories.append(h["loss"])
        weights.append([p._data.copy() for p in model.parameters()])
    assert histories[0] == histories[1]
    assert max_diff(weights[0], weights[1]) == 0


def test_explain_static_vs_dynamic_example(capsys):
    from chainrule.explain.cli import main
    assert main(["--example", "static-vs-dynamic"]) == 0
    out = capsys.readouterr().out
    assert "∂h/∂w = 0.25" in out and "static graph of" in out and "replayed" in out
    assert "reads a tensor's value" not in out and "bool(...)" in out


def test_numpy_update_of_a_parameters_array_is_refused():
    w = cr.tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        w.grad = None
        loss = (w * x).sum()
        loss.backward()
        w._data -= 0.1 * w.grad._data          # NumPy on .data: not a recorded operation
        return loss
    f = cr.compile(step)
    f(cr.ones(2))
    with pytest.raises(CompileError, match="in-place NumPy update"):
        f(cr.ones(2))
    assert type(w._data) is np.ndarray


def test_an_exception_during_the_capture_leaves_everything_as_it_was():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    calls = []

    def step(x):
        calls.append(1)
        loss = (w * x).sum()
        if len(calls) == 2:
            raise KeyError("boom")            # during the capture
        w.grad = None
        loss.backward()
        return loss
    f = cr.compile(step)
    f(cr.ones(2))
    with pytest.raises(KeyError):
        f(cr.ones(2))
    assert type(w._data) is np.ndarray and w.grad is None or type(w.grad._data) is np.ndarray
    assert [f(cr.ones(2)).item() for _ in range(3)] == [3.0] * 3
    assert f.stats["replays"] == 2 and w.grad.tolist() == [1.0, 1.0]


def test_decorator_forms_methods_and_functions_that_return_nothing():
    class Trainer:
        def __init__(self):
            cr.manual_seed(0)
            self.model = nn.Linear(3, 1)
            self.opt = cr.optim.SGD(self.model.parameters(), lr=0.1)
            self.seen = 0

        @cr.compile(check=1)
        def step(self, x):
            self.opt.zero_grad()
            self.model(x).sum().backward()
            self.opt.step()

    t = Trainer()
    before = t.model.weight._data.copy()
    for _ in range(4):
        assert t.step(cr.ones(2, 3)) is None
    assert np.allclose(t.model.weight._data, before - 4 * 0.1 * 2.0)
    assert Trainer.step.stats["replays"] == 2 and Trainer.step.stats["checked"] == 1


def test_the_benchmark_chain_replays_the_same_numpy_calls():
    bench = pytest.importorskip("bench.compile", reason="bench/ is only in a source checkout")
    data = np.linspace(-1, 1, bench.CHAIN_SIZE).astype(np.float32)
    x, seed = cr.tensor(data, requires_grad=True), cr.ones(bench.CHAIN_SIZE)
    step = cr.compile(bench.chain_step)
    grads = [step(x, seed).numpy().copy() for _ in range(3)]
    np.testing.assert_allclose(grads[2], bench.numpy_chain(data), rtol=1e-6)
    assert grads[0].tolist() == grads[2].tolist() and step.stats["replays"] == 1


def test_watched_calls_run_eagerly():
    """Anomaly mode and autograd.observe watch the eager engine: the replay would hide it."""
    w = cr.tensor([1.0, 2.0], requires_grad=True)

    def step(x):
        w.grad = None
        (w * x).sum().backward()
        return w.grad
    f = cr.compile(step)
    for _ in range(3):
        f(cr.ones(2))
    seen = []
    with cr.autograd.observe(lambda node, g, grads: seen.append(node.name)):
        f(cr.ones(2))
    with cr.detect_anomaly():
        f(cr.ones(2))
    assert seen == ["sum", "mul"] and f.stats["eager"] == 3 and f.stats["replays"] == 1
