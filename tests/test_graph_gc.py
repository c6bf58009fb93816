"""The collector policy for large graphs (chainrule.graph_gc): a graph that grows is kept out
of the cyclic collector's scans, yet cyclic garbage is never pinned beyond that graph, with or
without a backward, and a program's own gc.freeze() is left alone."""
import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import graph_gc as policy
from chainrule.graph_gc import FREEZE_EVERY, graph_gc

STEP_NODES = 2 * FREEZE_EVERY + 64   # every step spans two freeze calls, so it freezes


class _Cycle:
    """Cyclic garbage once dropped: freed only by the cyclic collector."""

    def __init__(self):
        self.me = self
        self.data = np.ones(1 << 17)   # 1 MiB


def _chain(n):
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0000001
    return x, y


@pytest.fixture
def policy_alone(monkeypatch):
    """No frozen objects but ours, none left over, and no rate limit on the collections."""
    graph_gc.release()
    if gc.get_freeze_count():
        pytest.skip("objects are frozen by someone else in this process: the policy stands by")
    monkeypatch.setattr(policy, "COLLECT_SHARE", 1.0)
    monkeypatch.setattr(graph_gc, "_collect_after", 0.0)
    yield
    graph_gc.release()


def _forward_only_steps(steps):
    """Each step: a reference cycle, a recorded graph that freezes, no backward, all dropped."""
    cycles, froze = [], 0
    for _ in range(steps):
        c = _Cycle()
        cycles.append(weakref.ref(c))
        _, y = _chain(STEP_NODES)
        froze += graph_gc.frozen and gc.get_freeze_count() > 0
        del c, y
    return cycles, froze


def _alive(refs):
    return sum(r() is not None for r in refs)


def test_a_dropped_graph_gives_its_frozen_objects_back(policy_alone):
    cycles, froze = _forward_only_steps(6)
    assert froze == 6                         # the policy did freeze, every step
    assert gc.get_freeze_count() == 0 and not graph_gc.frozen
    gc.collect()
    assert _alive(cycles) == 0                # 6 MiB of cycles: all collectable, all freed


def test_cyclic_garbage_is_collected_before_the_next_freeze(policy_alone):
    cycles, froze = _forward_only_steps(6)    # no gc.collect() anywhere
    assert froze == 6
    assert _alive(cycles) <= 1                # only the last step's cycle may wait


def test_garbage_waits_for_a_graph_that_is_alive_not_longer(policy_alone):
    c = _Cycle()
    ref = weakref.ref(c)
    x, y = _chain(STEP_NODES)
    del c
    gc.collect()
    assert graph_gc.frozen and ref() is not None   # frozen with the graph that is still alive
    mid = y
    for _ in range(STEP_NODES):                     # the graph keeps growing: still frozen
        y = y * 1.0000001
    assert graph_gc.frozen
    del y, mid
    assert not graph_gc.frozen and gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None


def test_a_graph_dropped_inside_a_collection_ends_its_episode(policy_alone):
    x, y = _chain(STEP_NODES)
    holder = _Cycle()                   # made after the last freeze: the collector sees it
    holder.graph = y
    ref = weakref.ref(holder)
    del y, holder
    assert graph_gc.frozen
    gc.collect()                        # frees the cycle, and with it the frozen graph
    assert ref() is None and not graph_gc.frozen and gc.get_freeze_count() == 0


def test_backward_still_unfreezes(policy_alone):
    c = _Cycle()
    ref = weakref.ref(c)
    x, y = _chain(STEP_NODES)
    del c
    assert graph_gc.frozen and gc.get_freeze_count() > 0
    y.backward()
    assert not graph_gc.frozen and gc.get_freeze_count() == 0 and gc.isenabled()
    assert x.grad is not None and x.grad.item() > 1.0
    gc.collect()
    assert ref() is None
    del y                                           # the graph dies later: nothing happens
    assert not graph_gc.frozen and gc.get_freeze_count() == 0


def test_small_graphs_are_never_frozen(policy_alone):
    for _ in range(3 * FREEZE_EVERY // 100):
        _, y = _chain(100)
        assert not graph_gc.frozen
        del y
    assert gc.get_freeze_count() == 0


def test_a_programs_own_freeze_is_left_alone(policy_alone):
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()    # may only shrink: frozen objects can still be freed
        _, y = _chain(STEP_NODES)
        assert not graph_gc.frozen and 0 < gc.get_freeze_count() <= frozen
        del y                               # a dropped graph does not unfreeze them
        assert 0 < gc.get_freeze_count() <= frozen
        _, y = _chain(STEP_NODES)
        y.backward()                        # nor does a backward
        assert not graph_gc.frozen and 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_no_freeze_while_the_collector_is_disabled(policy_alone):
    gc.disable()
    try:
        _, y = _chain(STEP_NODES)
        assert not graph_gc.frozen and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_a_graph_never_walked_back_stops_deferring_after_the_limit(policy_alone, monkeypatch):
    monkeypatch.setattr(policy, "FREEZE_LIMIT", 2 * FREEZE_EVERY)
    c = _Cycle()
    ref = weakref.ref(c)
    x, y = _chain(STEP_NODES)
    assert graph_gc.frozen
    del c
    for _ in range(3 * FREEZE_EVERY):   # the episode ends at the limit; the next one collects
        y = y * 1.0000001
    assert ref() is None                # freed while the graph is still alive, no gc.collect()
