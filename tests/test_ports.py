"""PyTorch programs that run on chainrule with only their import lines changed (issue 13).

Each program in tests/ports/ is written for PyTorch (run it with `python tests/ports/x.py`).
Here its source text runs twice: as written, on PyTorch, and with `import torch` turned into
`import chainrule as torch` (`import torch.nn as nn` into `import chainrule.nn as nn`, `from
torch.utils.data import ...` into `from chainrule.utils.data import ...`): nothing else in the
text changes, and the test checks that. Both runs start from the same initial weights (the
PyTorch model's, handed to both), and what they compute must agree to float32 rounding.
"""
import pathlib
import re
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

PORTS = pathlib.Path(__file__).resolve().parent / "ports"


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Both libraries on one BLAS thread: float32 sums then add up in one fixed order, so the
    agreement asserted below does not depend on thread counts left by earlier tests."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)
_IMPORTS = [(re.compile(r"^(\s*)import torch$"), r"\1import chainrule as torch"),
            (re.compile(r"^(\s*)import torch\.([\w.]+) as (\w+)$"), r"\1import chainrule.\2 as \3"),
            (re.compile(r"^(\s*)from torch((?:\.\w+)*) import "), r"\1from chainrule\2 import ")]


def port(source):
    """The source with its PyTorch imports pointed at chainrule; (text, lines changed)."""
    lines, changed = [], 0
    for line in source.splitlines():
        new = line
        for pattern, repl in _IMPORTS:
            new = pattern.sub(repl, new)
        changed += new != line
        lines.append(new)
    return "\n".join(lines) + "\n", changed


def load(name, on):
    """Run tests/ports/<name>.py as a module on "torch" or ported to "chainrule"; its globals."""
    source = (PORTS / f"{name}.py").read_text(encoding="utf-8")
    text = source if on == "torch" else port(source)[0]
    namespace = {"__name__": f"ports_{name}_{on}", "__file__": str(PORTS / f"{name}.py")}
    exec(compile(text, f"{name}.py ({on})", "exec"), namespace)
    return namespace


def _numpy_state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


@pytest.mark.parametrize("name", ["mnist_mlp", "char_lstm", "manual_backward", "word_lstm_lm"])
def test_only_import_lines_change(name):
    source = (PORTS / f"{name}.py").read_text(encoding="utf-8")
    text, changed = port(source)
    before, after = source.splitlines(), text.splitlines()
    edits = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == len(edits) > 0
    assert all(re.match(r"\s*(import|from) ", a) for a, _ in edits), edits
    assert "torch." not in "".join(b for _, b in edits).replace("as torch", "")


@pytest.fixture(scope="module")
def digits():
    import chainrule as cr
    X, y = cr.data.load_digits()
    return X.numpy().copy(), y.numpy().copy()


def test_mnist_style_training_script_agrees_with_pytorch(digits, capsys):
    images, labels = digits
    theirs, mine = load("mnist_mlp", "torch"), load("mnist_mlp", "chainrule")
    args = theirs["parse_args"](["--epochs", "2", "--no-shuffle", "--dropout", "0.0",
                                  "--save-model", "--log-interval", "1000"])
    init = _numpy_state(theirs["Net"](dropout=0.0))
    (t_model, t_log), t_time = _timed(theirs["main"], args, images, labels, init)
    (c_model, c_log), c_time = _timed(mine["main"], args, images, labels, init)
    assert len(c_log["train_loss"]) == len(t_log["train_loss"]) == 2 * 23
    np.testing.assert_allclose(c_log["train_loss"], t_log["train_loss"], rtol=2e-4, atol=1e-5)
    for key in ("test_loss", "accuracy", "confidence", "lr"):
        np.testing.assert_allclose(c_log[key], t_log[key], rtol=2e-4, atol=1e-6, err_msg=key)
    assert c_log["accuracy"][-1] > 0.8
    assert c_log["restored_matches"] and t_log["restored_matches"]
    assert c_log["n_params"] == t_log["n_params"]
    for key, value in _numpy_state(c_model).items():
        np.testing.assert_allclose(value, t_model.state_dict()[key].numpy(), rtol=1e-3,
                                   atol=1e-4, err_msg=key)
    # the script's own printout is the same, line for line (numbers to float32 rounding)
    out = capsys.readouterr().out.split("Train Epoch: 1")
    assert len(out) == 3
    number = r"\d+\.\d+"
    assert re.sub(number, "#", out[1]) == re.sub(number, "#", out[2])
    np.testing.assert_allclose([float(v) for v in re.findall(number, out[2])],
                               [float(v) for v in re.findall(number, out[1])], rtol=1e-4)
    print(f"mnist_mlp: chainrule {c_time:.2f} s, PyTorch {t_time:.2f} s")


def test_mnist_style_script_runs_shuffled_with_a_generator(digits):
    images, labels = digits
    mine = load("mnist_mlp", "chainrule")
    args = mine["parse_args"](["--epochs", "1", "--log-interval", "1000"])
    _, first = mine["main"](args, images, labels)
    _, again = mine["main"](args, images, labels)
    assert first["train_loss"] == again["train_loss"]     # seeded: the same run twice
    assert first["accuracy"][-1] > 0.6


def test_char_level_lstm_agrees_with_pytorch():
    theirs, mine = load("char_lstm", "torch"), load("char_lstm", "chainrule")
    vocab = sorted(set(theirs["TEXT"]))
    init = _numpy_state(theirs["CharLSTM"](len(vocab)))
    t, t_time = _timed(theirs["train"], init)
    c, c_time = _timed(mine["train"], init)
    assert len(c["losses"]) == len(t["losses"]) > 20
    np.testing.assert_allclose(c["losses"], t["losses"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(c["accuracies"], t["accuracies"], atol=1e-6)
    np.testing.assert_allclose(c["eval_loss"], t["eval_loss"], rtol=1e-3)
    assert c["losses"][-1] < c["losses"][0] - 0.5
    # sampling draws from each library's own generator: a valid sample, not the same one
    assert len(c["sample"]) == 40 and set(c["sample"]) <= set(c["vocab"])
    print(f"char_lstm: chainrule {c_time:.2f} s, PyTorch {t_time:.2f} s")


def test_hand_written_backward_agrees_with_autograd_and_pytorch():
    theirs, mine = load("manual_backward", "torch"), load("manual_backward", "chainrule")
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((64, 100)), "y": rng.standard_normal((64, 10)),
              "w1": rng.standard_normal((100, 50)), "w2": rng.standard_normal((50, 10))}
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    t, c = theirs["main"](arrays), mine["main"](arrays)
    assert c["grads_agree"] and t["grads_agree"]
    np.testing.assert_allclose(c["hand"], t["hand"], rtol=1e-4)
    np.testing.assert_allclose(c["auto"], t["auto"], rtol=1e-4)
    np.testing.assert_allclose(c["hand"], c["auto"], rtol=1e-4)


def test_word_level_lstm_language_model_agrees_with_pytorch():
    theirs, mine = load("word_lstm_lm", "torch"), load("word_lstm_lm", "chainrule")
    ntokens = len(theirs["Corpus"](theirs["make_corpus"]()).dictionary)
    init = _numpy_state(theirs["RNNModel"](ntokens, dropout=0.0))
    quiet = dict(dropout=0.0, log=lambda line: None)      # dropout off: masks differ per library
    t, t_time = _timed(theirs["main"], init, **quiet)
    c, c_time = _timed(mine["main"], init, **quiet)
    assert c["tied"] and t["tied"]                        # decoder.weight = encoder.weight
    assert c["n_params"] == t["n_params"] and c["ntokens"] == t["ntokens"] == ntokens
    assert len(c["losses"]) == len(t["losses"]) > 50
    np.testing.assert_allclose(c["losses"], t["losses"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(c["val_losses"], t["val_losses"], rtol=1e-3)
    np.testing.assert_allclose(c["perplexity"], t["perplexity"], rtol=1e-3)
    assert c["val_losses"][-1] < c["val_losses"][0] - 1.0
    # with its default dropout the script trains too (each library's own masks)
    dropped = mine["main"](init, log=lambda line: None)
    assert dropped["val_losses"][-1] < dropped["val_losses"][0]
    print(f"word_lstm_lm: chainrule {c_time:.2f} s, PyTorch {t_time:.2f} s")


@pytest.fixture
def cuda_on_the_check_device(monkeypatch):
    """"cuda" served by the check device's arrays (NumPy underneath, refusing what CuPy
    refuses), and cuda.is_available() True: a program's CUDA branch runs on this CPU."""
    import chainrule as cr
    from chainrule import backend
    from chainrule.devices import check
    kind = check.load()
    kind.name = "cuda"
    monkeypatch.setitem(backend._KINDS, "cuda", kind)
    monkeypatch.setitem(backend._BY_TYPE, check.CheckedArray, kind)
    monkeypatch.setattr(backend, "ARRAY_TYPES", tuple(backend._BY_TYPE))
    monkeypatch.setattr(cr.cuda, "is_available", lambda: True)


def test_mnist_script_takes_its_cuda_branch_to_the_cpus_numbers(digits, cuda_on_the_check_device,
                                                                capsys):
    """The script's `device = torch.device("cuda" if use_cuda else "cpu")`, `.to(device)` of
    the model and every batch, dropout and shuffling, run on a (simulated) GPU: the same losses
    and weights as its CPU run, bit for bit."""
    mine = load("mnist_mlp", "chainrule")
    runs = {}
    for flags in ([], ["--no-cuda"]):
        args = mine["parse_args"](["--epochs", "1", "--log-interval", "1000"] + flags)
        runs[bool(flags)] = mine["main"](args, *digits)
    (gpu_model, gpu_log), (cpu_model, cpu_log) = runs[False], runs[True]
    assert all(str(p.device) == "cuda:0" for p in gpu_model.parameters())
    assert all(p.device.type == "cpu" for p in cpu_model.parameters())
    assert gpu_log == cpu_log and gpu_log["accuracy"][-1] > 0.6
    for (name, a), b in zip(gpu_model.state_dict().items(), cpu_model.state_dict().values()):
        np.testing.assert_array_equal(a.cpu().numpy(), b.numpy(), err_msg=name)
