"""Keep a large growing graph out of the cyclic collector's scans without pinning garbage.

A recorded graph is acyclic and freed by reference counting, yet while it grows the cyclic
collector rescans every live node again and again (a full collection each time the heap grows
by 25%): two thirds of the forward time of a 1e6-node chain (bench/NOTES.md §4). So once a
graph has lived through a whole window of FREEZE_EVERY recorded nodes, everything alive is
moved out of the collector's scans (`gc.freeze()`), again every FREEZE_EVERY nodes while a
graph keeps growing.

Frozen objects are never collected, garbage included, and each `gc.freeze()` also resets the
collector's counters, so repeated freezes starve its full collections: cyclic garbage must
not stay frozen beyond the graph that asked for it (bench/NOTES.md §9). Hence:

- an episode of freezes ends (`gc.unfreeze()`) at the next backward, when its graph dies (a
  weakref to one of its nodes: the program dropped the graph without backward), or after
  FREEZE_LIMIT nodes;
- before a later episode freezes, the cyclic garbage that the previous one gave back is
  collected: by the collector if it has run a full collection since, else by a `gc.collect()`
  here, skipped (the episode freezes anyway) while those would take more than COLLECT_SHARE
  of the time;
- a program that froze objects itself is left alone.

While an episode's graph is alive, cyclic garbage made meanwhile waits for it, even through a
`gc.collect()`; once the graph is dropped or walked back, `gc.collect()` frees everything.
"""
import gc
import threading
import weakref
from time import perf_counter

FREEZE_EVERY = 4096       # recorded nodes between calls of GraphGC.recorded
FREEZE_LIMIT = 1 << 22    # nodes after which an episode ends even without a backward
COLLECT_SHARE = 0.05      # at most this share of the time in the gc.collect() calls made here


def _full_collections():
    return gc.get_stats()[-1]["collections"]


class GraphGC:
    """The freeze policy; process-wide like the collector itself, so its state changes under
    a lock (threads record and walk graphs at once). Reentrant: a dying graph's callback may
    run inside the lock, when an allocation there starts a collection."""

    __slots__ = ("frozen", "since", "lock", "_tick", "_anchor", "_given_back", "_collect_after")

    def __init__(self):
        self.frozen = False        # True while the objects in the permanent generation are ours
        self.since = 0             # nodes recorded since this episode started
        self.lock = threading.RLock()
        self._tick = None          # weakref to the node of the previous call
        self._anchor = None        # weakref (with callback) to a node of this episode's graph
        self._given_back = None    # count of full collections when an episode last ended
        self._collect_after = 0.0  # perf_counter() before which no gc.collect() is made here

    def recorded(self, node):
        """Called by `apply` with every FREEZE_EVERY-th recorded node."""
        tick = weakref.ref(node)
        with self.lock:
            last, self._tick = self._tick, tick
            last = last() if last is not None else None
            if last is None or not gc.isenabled():
                return       # no graph lived through the last window: nothing worth freezing
            if not self.frozen:
                if gc.get_freeze_count():
                    return   # the program's own freeze: do not touch it
                self._collect_given_back()
                anchor = weakref.ref(last, self._died)
                self.frozen, self.since, self._anchor = True, 0, anchor
            self.since += FREEZE_EVERY
            if self.since > FREEZE_LIMIT:   # a graph never walked back: stop deferring
                self._release()
                return
            gc.freeze()      # nothing between the test of `frozen` and here can collect

    def _collect_given_back(self):
        """Collect the garbage the last episode gave back, before it is frozen again."""
        if self._given_back is None or self._given_back != _full_collections():
            return           # nothing given back, or the collector has run a full collection
        self._given_back = None
        start = perf_counter()
        if start < self._collect_after:
            return           # the last ones took too long: freeze anyway, collect a later time
        gc.collect()
        end = perf_counter()
        self._collect_after = end + (end - start) * (1 / COLLECT_SHARE - 1)

    def _died(self, ref):
        with self.lock:
            if ref is self._anchor:   # this episode's graph was dropped without backward
                self._release()

    def release(self):
        """End the episode (at a backward): give the frozen objects back to the collector."""
        if self.frozen:
            with self.lock:
                self._release()

    def _release(self):
        self._anchor = None
        if self.frozen:
            self.frozen = False
            gc.unfreeze()
            self._given_back = _full_collections()


graph_gc = GraphGC()
