"""The engine's speed paths keep their promises: the garbage-collector policy for large
graphs (autograd.graph_gc), the cached scalar constants, gc state restored after backward."""
import gc

import numpy as np
import pytest

import chainrule as cr
from chainrule import autograd


def _chain(n):
    x = cr.tensor(1.0, requires_grad=True)
    z = x
    for _ in range(n):
        z = z * 1.0 + 0.25
    return x, z


@pytest.fixture
def no_frozen_objects():
    if gc.get_freeze_count():
        pytest.skip("objects are already frozen in this process (gc.freeze was called), so "
                    "the collector policy leaves the collector alone")
    yield
    autograd.graph_gc.release()


def test_large_graph_is_kept_out_of_gc_scans_until_backward(no_frozen_objects):
    x, z = _chain(autograd.FREEZE_EVERY)          # 2 nodes per step
    assert gc.get_freeze_count() > 0
    z.backward()
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    assert x.grad.item() == 1.0


def test_a_programs_own_freeze_is_left_alone(no_frozen_objects):
    gc.freeze()
    try:
        _, z = _chain(autograd.FREEZE_EVERY)
        assert not autograd.graph_gc.frozen
        z.backward()
        assert gc.get_freeze_count() > 0 and not autograd.graph_gc.frozen
    finally:
        gc.unfreeze()


def test_backward_restores_a_disabled_collector():
    gc.disable()
    try:
        x = cr.tensor(2.0, requires_grad=True)
        (x * x).backward()
        assert not gc.isenabled() and x.grad.item() == 4.0
    finally:
        gc.enable()


def test_cached_scalar_constants_are_shared_read_only_and_keep_signed_zero():
    x = cr.tensor([1.0, -2.0], requires_grad=True)
    a, b = x * 0.5, x * 0.5
    const_a, const_b = a._node.inputs[1], b._node.inputs[1]
    assert const_a is const_b and not const_a.numpy().flags.writeable
    assert const_a.dtype == cr.float32 and not const_a.requires_grad
    with np.errstate(divide="ignore"):
        assert (x / 0.0).numpy().tolist() == [np.inf, -np.inf]
        assert (x / -0.0).numpy().tolist() == [-np.inf, np.inf]
    (a + b).sum().backward()
    assert x.grad.numpy().tolist() == [1.0, 1.0]
