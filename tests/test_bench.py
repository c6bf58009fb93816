"""The benchmark suite's references agree with chainrule (the suite refuses to time wrong
gradients), and `chainrule bench` explains itself outside a checkout. No timing here."""
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if not (ROOT / "bench" / "__main__.py").is_file():
    pytest.skip("bench/ is only in a source checkout", allow_module_level=True)
sys.path.insert(0, str(ROOT))
from bench import mlp as bench_mlp  # noqa: E402
from bench import cnn, overhead  # noqa: E402
from bench.common import assert_close  # noqa: E402


def test_mlp_reference_gradients_equal_chainrule():
    params, x, y = bench_mlp.make_problem((12, 8, 8, 3), 5)
    bench_mlp.check_gradients(params, (12, 8, 8, 3), x, y, torch=None)


def test_hand_written_reference_catches_a_wrong_gradient():
    params, x, y = bench_mlp.make_problem((12, 8, 3), 5)
    _, grads = bench_mlp.NumpyMLP(params).grads(x, y)
    with pytest.raises(AssertionError, match="differ"):
        assert_close("perturbed", grads[0] * 1.01, grads[0])


def test_cnn_reference_gradients_equal_chainrule():
    params, x, y = cnn.make_problem()
    cnn.check_gradients(params, x[:4], y[:4], torch=None)


def test_overhead_chain_reference():
    import chainrule as cr
    data = np.linspace(-1, 1, overhead.SIZE).astype(np.float32)
    x = cr.tensor(data, requires_grad=True)
    overhead.framework_chain(x, cr.ones(overhead.SIZE))
    assert_close("chain", x.grad.numpy(), overhead.numpy_chain(data))


def test_bench_command_outside_a_checkout(monkeypatch, capsys):
    import chainrule.bench_cli as bench_cli
    monkeypatch.setattr(bench_cli, "find_checkout", lambda: None)
    assert bench_cli.main([]) == 2
    assert "python -m bench" in capsys.readouterr().err
