"""detect_anomaly: the backward pass stops at the first NaN/inf gradient and names the op, the
user's forward source line and the offending values; hooks are removed afterwards."""
import inspect

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import AnomalyError
from chainrule.ops import registry

# the forward passes below divide by zero on purpose
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _no_hooks_left():
    return not registry.node_hooks and not cr.autograd._observers


def test_reports_op_source_line_and_values():
    x = cr.tensor([0.0, 1.0, 4.0], requires_grad=True)
    with cr.detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        y = (x.sqrt() * 3.0).sum()
        with pytest.raises(AnomalyError) as info:
            y.backward()
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "'sqrt'" in msg
    assert f"{__file__}\", line {line}" in msg
    assert "y = (x.sqrt() * 3.0).sum()" in msg         # the source text itself
    assert "1 inf" in msg and "[0]=inf" in msg           # the offending value and where
    assert "1/(2√x)" in msg                              # the local derivative that broke
    assert "epsilon" in msg                              # a fix
    assert _no_hooks_left()


def test_stops_at_the_first_non_finite_gradient():
    """log(0) makes the first inf; the ops before it in the backward pass never see it."""
    x = cr.tensor([0.0, 2.0], requires_grad=True)
    seen = []
    cr.autograd._observers.append(lambda node, g, grads: seen.append(node.name))
    try:
        with cr.detect_anomaly():
            loss = (x.log() * 2.0).exp().sum()
            with pytest.raises(AnomalyError, match="'log'"):
                loss.backward()
    finally:
        cr.autograd._observers.pop(0)
    assert seen == ["sum", "exp", "mul", "log"]  # stopped at log (observer before anomaly's)
    assert x.grad is None                         # nothing reached the leaf


def test_nan_gradient_from_a_finite_forward():
    """sqrt(x) at x = 0 times 0: forward is finite, backward gives 0 * inf = nan upstream."""
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with cr.detect_anomaly():
        y = (x.sqrt() * cr.tensor([0.0, 1.0])).sum()
        with pytest.raises(AnomalyError) as info:
            y.backward()
    msg = str(info.value)
    assert "sqrt" in msg and "nan" in msg


def test_no_error_on_finite_gradients_and_hooks_removed():
    w = cr.randn(3, 2, requires_grad=True)
    with cr.detect_anomaly():
        loss = ((cr.randn(4, 3) @ w).tanh() ** 2).mean()
        loss.backward()
        assert loss.grad_fn.trace is not None
        assert loss.grad_fn.trace[0] == __file__
    assert np.isfinite(w.grad.numpy()).all()
    assert _no_hooks_left()
    z = (w * 2).sum()
    assert z.grad_fn.trace is None                      # outside the block: no trace kept


def test_nesting_and_exceptions_restore_state():
    with cr.detect_anomaly():
        with cr.detect_anomaly():
            assert registry.node_hooks.count(registry.node_hooks[0]) == 1  # installed once
        assert len(registry.node_hooks) == 1 and len(cr.autograd._observers) == 1
    assert _no_hooks_left()
    with pytest.raises(KeyError):
        with cr.detect_anomaly():
            raise KeyError("boom")
    assert _no_hooks_left()


def test_node_made_before_the_block_says_so():
    x = cr.tensor([-1.0], requires_grad=True)
    y = x.sqrt().sum()                                  # nan forward, nan gradient
    with cr.detect_anomaly():
        with pytest.raises(AnomalyError, match="source line is unknown"):
            y.backward()


def test_works_as_a_decorator():
    @cr.detect_anomaly()
    def step(x):
        (1.0 / x).sum().backward()

    with pytest.raises(AnomalyError, match="'div'"):
        step(cr.tensor([0.0, 1.0], requires_grad=True))
    assert _no_hooks_left()
