"""Threads: engine state that is not a property of a graph is per thread or shared safely
(docs/conventions.md, "Threads").

Grad mode is per thread (no_grad and a running backward in one thread never change what
another records); the cyclic collector paused by backward is resumed when the last running
backward leaves; `observe` watches this thread's passes only; one graph walked by two threads
at once is a GraphError; and several threads training separate models get exactly the
gradients of a single-thread run (the stress test)."""
import gc
import sys
import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule import autograd, nn
from chainrule.errors import GraphError

TIMEOUT = 10


def _in_thread(fn):
    """Run fn in a new thread; returns (thread, box) where box gets 'result' or 'error'."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:   # noqa: BLE001 - handed back to the test
            box["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _join(thread, box):
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "thread did not finish"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _paused_backward(entered, release, retain_graph=False, loss=None):
    """A backward that stops at its first node until `release` is set (an observer blocks)."""
    def run():
        nonlocal loss
        if loss is None:
            x = cr.tensor([1.0, 2.0], requires_grad=True)
            loss = (x * x).sum()

        def block(node, g, grads):
            entered.set()
            assert release.wait(TIMEOUT)
        with autograd.observe(block):
            loss.backward(retain_graph=retain_graph)
        return loss
    return run


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside, done = threading.Event(), threading.Event()

    def hold_no_grad():
        with cr.no_grad():
            inside.set()
            assert done.wait(TIMEOUT)
            return cr.is_grad_enabled()
    thread, box = _in_thread(hold_no_grad)
    assert inside.wait(TIMEOUT)
    w = cr.tensor(1.0, requires_grad=True)
    y = w * 2.0
    enabled_here = cr.is_grad_enabled()
    done.set()
    assert _join(thread, box) is False           # the other thread's block still holds
    assert enabled_here and y.requires_grad and y.grad_fn is not None


def test_a_running_backward_does_not_stop_recording_in_another_thread():
    entered, release = threading.Event(), threading.Event()
    thread, box = _in_thread(_paused_backward(entered, release))
    assert entered.wait(TIMEOUT)
    try:
        w = cr.tensor(3.0, requires_grad=True)
        y = w * w
        recorded, enabled = y.requires_grad, cr.is_grad_enabled()
    finally:
        release.set()
    _join(thread, box)
    assert recorded and enabled
    y.backward()
    assert w.grad.item() == 6.0


def test_new_threads_start_with_grad_enabled():
    with cr.no_grad():
        thread, box = _in_thread(cr.is_grad_enabled)
        assert _join(thread, box) is True


def test_one_no_grad_object_entered_by_two_threads_restores_each_thread():
    shared = cr.no_grad()
    inside, done = threading.Event(), threading.Event()

    def other():
        with cr.no_grad():
            with shared:
                inside.set()
                assert done.wait(TIMEOUT)
            return cr.is_grad_enabled()   # its own outer no_grad again
    thread, box = _in_thread(other)
    assert inside.wait(TIMEOUT)
    with shared:
        pass
    after_here = cr.is_grad_enabled()
    done.set()
    assert _join(thread, box) is False
    assert after_here is True


def test_overlapping_backwards_keep_the_collector_paused_until_the_last_one_leaves():
    assert gc.isenabled()
    a_in, a_go = threading.Event(), threading.Event()
    b_in, b_go = threading.Event(), threading.Event()
    a, a_box = _in_thread(_paused_backward(a_in, a_go))
    assert a_in.wait(TIMEOUT)
    b, b_box = _in_thread(_paused_backward(b_in, b_go))
    try:
        assert b_in.wait(TIMEOUT)
        a_go.set()                       # the first one leaves while the second walks
        _join(a, a_box)
        paused_while_b_walks = not gc.isenabled()
    finally:
        a_go.set()
        b_go.set()
    _join(b, b_box)
    assert paused_while_b_walks
    assert gc.isenabled() and cr.is_grad_enabled()


def test_one_graph_walked_by_two_threads_at_once_is_a_graph_error():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    entered, release = threading.Event(), threading.Event()
    thread, box = _in_thread(_paused_backward(entered, release, retain_graph=True, loss=loss))
    assert entered.wait(TIMEOUT)
    try:
        with pytest.raises(GraphError, match="another thread is walking this graph"):
            loss.backward(retain_graph=True)
        # a second loss sharing the graph's nodes is the same graph
        with pytest.raises(GraphError, match="another thread"):
            (loss * 2.0).backward(retain_graph=True)
        # an independent graph (same leaf) is fine
        (x * 3.0).sum().backward()
    finally:
        release.set()
    _join(thread, box)
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])    # 2x + 3
    loss.backward()                       # free again once the other thread is done
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 11.0])


def test_observe_watches_only_its_own_thread():
    seen = []
    entered, release = threading.Event(), threading.Event()

    def watch():
        with autograd.observe(lambda node, g, grads: seen.append(node.name)):
            entered.set()
            assert release.wait(TIMEOUT)
    thread, box = _in_thread(watch)
    assert entered.wait(TIMEOUT)
    try:
        x = cr.tensor(1.0, requires_grad=True)
        x.exp().backward()
    finally:
        release.set()
    _join(thread, box)
    assert seen == []


# ---------------------------------------------------------------- the stress test

STEPS, WORKERS = 300, 4


def _data(k):
    rng = np.random.default_rng(100 + k)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    return cr.tensor(x), cr.tensor(np.sin(x.sum(1, keepdims=True)).astype(np.float32))


def _model(k):
    cr.manual_seed(k)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))


def _train(model, k, steps):
    """SGD on a small regression; every step's gradients (copies), and a long chain every 50
    steps (its 5,000 nodes exercise the collector's freeze policy)."""
    x, t = _data(k)
    opt = cr.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    grads = []
    for step in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), t)
        if step % 50 == 0:
            z = loss
            for _ in range(2500):
                z = z * 1.0 + 0.0
            loss = z
        loss.backward()
        grads.append([p.grad.numpy().copy() for p in model.parameters()])
        with cr.no_grad():
            probe = model(x)       # no graph recorded here, whatever the other threads do
        assert probe.grad_fn is None
        opt.step()
    return grads


def test_threads_training_separate_models_match_a_single_thread_run():
    expected = [_train(_model(k), k, STEPS) for k in range(WORKERS)]
    models = [_model(k) for k in range(WORKERS)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)          # switch threads often: races show up, if any
    try:
        runs = [_in_thread(lambda k=k: _train(models[k], k, STEPS)) for k in range(WORKERS)]
        results = [_join(*run) for run in runs]
    finally:
        sys.setswitchinterval(old)
    for k in range(WORKERS):
        assert len(results[k]) == STEPS
        for step, (got, want) in enumerate(zip(results[k], expected[k])):
            for g, w in zip(got, want):
                assert np.array_equal(g, w), f"worker {k}, step {step}"
    assert gc.isenabled() and cr.is_grad_enabled()


def test_threads_sharing_a_parameter_add_up_all_their_gradients():
    w = cr.zeros(200_000, requires_grad=True)
    rounds = 40

    def work(k):
        for _ in range(rounds):
            (w * float(k + 1)).sum().backward()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        runs = [_in_thread(lambda k=k: work(k)) for k in range(WORKERS)]
        for run in runs:
            _join(*run)
    finally:
        sys.setswitchinterval(old)
    expected = rounds * sum(k + 1 for k in range(WORKERS))
    assert np.all(w.grad.numpy() == expected)
