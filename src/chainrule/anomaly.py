"""Anomaly mode: find the first NaN or inf gradient and say which forward line made it.

While `detect_anomaly()` is active, every recorded node remembers the user's source line that
created it (the first stack frame outside the chainrule package), and the backward pass is
watched: the first VJP that produces a non-finite gradient stops it with an `AnomalyError`
naming the op, that source line and a summary of the offending values. Both hooks are the
engine's own extension points (`ops.registry.node_hooks`, `autograd.observe`), so anomaly
mode observes the real backward pass and costs nothing when it is off.
"""
import os
import sys

import numpy as np

from . import autograd, backend
from .errors import AnomalyError
from .ops import registry
from .ops.registry import value

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame():
    """(filename, line number, function) of the innermost frame outside chainrule."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name


def _remember_trace(node):
    node.trace = _user_frame()


def _where(node):
    trace = node.trace
    if trace is None:
        return "(created before detect_anomaly() was entered, so its source line is unknown)"
    filename, lineno, func = trace
    text = _source_line(filename, lineno)
    return f'File "{filename}", line {lineno}, in {func}' + (f"\n    {text}" if text else "")


def _source_line(filename, lineno):
    import linecache
    return linecache.getline(filename, lineno).strip()


def summarize(array, limit=4):
    """A short description of the non-finite entries of `array`: counts and the first few."""
    array = backend.to_host(array)     # a message: read on the host, wherever it lives
    bad = ~np.isfinite(array)
    n_nan = int(np.isnan(array).sum())
    n_inf = int(bad.sum()) - n_nan
    where = np.argwhere(bad)[:limit] if array.ndim else np.zeros((1, 0), dtype=int)
    shown = ", ".join(f"[{', '.join(str(int(i)) for i in idx)}]={float(array[tuple(idx)])}"
                      for idx in where)
    more = " …" if int(bad.sum()) > limit else ""
    return (f"{n_nan} nan and {n_inf} inf of {array.size} values (shape {array.shape}, "
            f"{array.dtype}): {shown}{more}")


def _finite_summary(array):
    array = backend.to_host(array)
    if array.size == 0:
        return "empty"
    return f"shape {array.shape}, min {float(np.min(array)):.6g}, max {float(np.max(array)):.6g}"


def _check_gradients(node, g, input_grads):
    for i, gi in enumerate(input_grads):
        if gi is None or np.isfinite(value(gi)).all():
            continue
        upstream = value(g)
        cause = ("the upstream gradient was already non-finite"
                 if not np.isfinite(upstream).all() else
                 f"the upstream gradient was finite ({_finite_summary(upstream)}), so the "
                 f"local derivative {_deriv(node, i)} of "
                 f"{node.prim.formula} is where it broke")
        inputs = node.inputs or ()
        values = "; ".join(f"input {k}: {_finite_or_bad(t._data)}" for k, t in enumerate(inputs))
        raise AnomalyError(
            f"detect_anomaly: the backward of '{node.prim.name}' produced a non-finite gradient "
            f"for its input {i}: {summarize(value(gi))}.\n"
            f"The forward call was made at:\n  {_where(node)}\n"
            f"Forward input values — {values}. Cause: {cause}.\n"
            "Fix: keep the op inside its domain (e.g. clip before log/sqrt/div, add an epsilon), "
            "lower the learning rate, or use a numerically stable composite (logsumexp, "
            "cross_entropy on logits).")


def _deriv(node, i):
    derivs = node.prim.derivs
    return derivs[min(i, len(derivs) - 1)] if derivs else "?"


def _finite_or_bad(array):
    if array.size and not np.isfinite(array).all():
        return summarize(array)
    return _finite_summary(array)


class detect_anomaly:
    """Context manager (and decorator): record where each node is made and stop the backward
    pass at the first NaN/inf gradient with an `AnomalyError`.

    Anomaly mode slows the forward pass (it walks the stack at every op), so use it to debug,
    not to train. Nested blocks are fine: the hooks are installed once by the outermost block.

    >>> import chainrule as cr
    >>> x = cr.tensor([0.0, 1.0], requires_grad=True)
    >>> with cr.detect_anomaly():
    ...     y = x.sqrt().sum()
    ...     try:
    ...         y.backward()
    ...     except cr.errors.AnomalyError as e:
    ...         print("sqrt" in str(e))
    True
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        self._installed = []

    def __enter__(self):
        if _remember_trace not in registry.node_hooks:
            registry.node_hooks.append(_remember_trace)
            self._installed.append((registry.node_hooks, _remember_trace))
        if self.check_nan and _check_gradients not in autograd._observers:
            autograd._observers.append(_check_gradients)
            self._installed.append((autograd._observers, _check_gradients))
        return self

    def __exit__(self, *exc):
        while self._installed:
            hooks, fn = self._installed.pop()
            if fn in hooks:
                hooks.remove(fn)
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


def is_anomaly_enabled():
    """True inside a `detect_anomaly()` block."""
    return _remember_trace in registry.node_hooks
