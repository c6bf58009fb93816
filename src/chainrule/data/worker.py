"""Worker processes for `DataLoader(num_workers=k)`, as in PyTorch.

Each of the k workers is a process with its own index queue; all answer on one result queue.
The loader hands out batches of indices round robin, keeping at most `prefetch_factor` batches
per worker in flight, and yields the answers in the order of the batches (an answer that comes
early waits in a buffer). A worker seeds chainrule's generator, Python's `random` and NumPy's
global generator with `base_seed + worker_id` (base_seed is drawn per epoch from the loader's
generator state, so a seeded loader gives every worker the same stream on every run), sets
`get_worker_info()`, runs `worker_init_fn(worker_id)`, then fetches and collates batches. An
exception in a worker comes back with its traceback and is raised in the main process as the
same exception type ("Caught ValueError in DataLoader worker process 0. Original Traceback
..."). Workers are shut down when the epoch ends, when the loop is left early (break, an
exception) or when the iterator is garbage collected; with persistent_workers=True they live
as long as the loader. A worker that dies (killed, crashed) makes the loader raise instead of
waiting forever, and a worker whose parent died exits by itself.
"""
import hashlib
import multiprocessing
import os
import queue
import random
import time
import traceback
import weakref

import numpy as np

from .. import backend

_POLL = 0.2          # seconds between checks that the workers (or the parent) are alive
_worker_info = None


class WorkerInfo:
    """What a worker process knows about itself (`get_worker_info()`): id, num_workers, seed,
    dataset (the worker's copy).

    >>> import chainrule as cr
    >>> class Which(cr.data.Dataset):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return cr.tensor(cr.data.get_worker_info().id)
    >>> [batch.tolist() for batch in cr.data.DataLoader(Which(), batch_size=2, num_workers=2)]
    [[0, 0], [1, 1]]
    """

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={type(self.dataset).__name__})")


def get_worker_info():
    """Inside a DataLoader worker process, its WorkerInfo; None in the main process.

    >>> import chainrule as cr
    >>> cr.data.get_worker_info() is None
    True
    """
    return _worker_info


class _ExceptionWrapper:
    """An exception raised in a worker, carried to the main process with its traceback."""

    def __init__(self, exc, where):
        self.exc_type = type(exc)
        self.where = where
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:   # KeyError shows its message as a repr
            msg = KeyError(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exc


def _worker_loop(fetch, dataset, index_queue, result_queue, seed, worker_id, num_workers,
                 init_fn, parent):
    global _worker_info
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    backend.manual_seed(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    init_error = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
    except Exception as exc:
        init_error = _ExceptionWrapper(exc, f"in DataLoader worker process {worker_id}")
    while True:
        try:
            task = index_queue.get(timeout=_POLL * 5)
        except queue.Empty:
            if os.getppid() != parent:      # the main process is gone: nobody to answer
                return
            continue
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if task is None:
            return
        key, indices = task
        if init_error is not None:
            data = init_error
        else:
            try:
                data = fetch(indices)
            except Exception as exc:
                data = _ExceptionWrapper(exc, f"in DataLoader worker process {worker_id}")
        try:
            result_queue.put((key, data))
        except Exception as exc:         # the batch cannot be pickled
            result_queue.put((key, _ExceptionWrapper(
                exc, f"in DataLoader worker process {worker_id} (sending its batch)")))


def base_seed(state):
    """A seed for one epoch's workers, from the loader generator's state at its start (so it
    depends on the loader's seed and the epoch, and drawing it does not move the generator)."""
    digest = hashlib.sha256(repr(state).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class WorkerPool:
    """k worker processes serving one loader (for one epoch, or for its whole life with
    persistent_workers)."""

    def __init__(self, fetch, dataset, num_workers, seed, init_fn=None, context=None,
                 prefetch_factor=2, timeout=0):
        if context is None:
            context = multiprocessing.get_context()
        elif isinstance(context, str):
            context = multiprocessing.get_context(context)
        self.num_workers, self.prefetch = num_workers, max(1, prefetch_factor) * num_workers
        self.timeout = timeout
        self.result_queue = context.Queue()
        self.index_queues, self.workers = [], []
        self._epoch = 0
        self._closed = False
        parent = os.getpid()
        for i in range(num_workers):
            q = context.Queue()
            w = context.Process(target=_worker_loop, daemon=True,
                                args=(fetch, dataset, q, self.result_queue, seed + i, i,
                                      num_workers, init_fn, parent),
                                name=f"chainrule-DataLoader-worker-{i}")
            w.start()
            self.index_queues.append(q)
            self.workers.append(w)
        self._finalizer = weakref.finalize(self, _shutdown, self.workers, self.index_queues,
                                           self.result_queue)

    def run(self, batches):
        """Yield the collated batch of each list of indices in `batches`, in order."""
        if self._closed:
            raise RuntimeError("DataLoader: its worker processes were shut down")
        self._epoch += 1
        epoch = self._epoch
        batches = iter(enumerate(batches))
        sent = received = 0
        waiting = {}
        exhausted = False

        def send():
            nonlocal sent, exhausted
            while not exhausted and sent - received < self.prefetch:
                item = next(batches, None)
                if item is None:
                    exhausted = True
                    return
                k, indices = item
                self.index_queues[k % self.num_workers].put(((epoch, k), indices))
                sent += 1

        send()
        while received < sent:
            while received not in waiting:
                (got_epoch, k), data = self._get()
                if got_epoch == epoch:
                    waiting[k] = data
            data = waiting.pop(received)
            received += 1
            send()
            if isinstance(data, _ExceptionWrapper):
                data.reraise()
            yield data

    def _get(self):
        start = time.monotonic()
        while True:
            try:
                return self.result_queue.get(timeout=_POLL)
            except queue.Empty:
                dead = [w.pid for w in self.workers if not w.is_alive()]
                if dead:
                    self.shutdown()
                    raise RuntimeError(
                        f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited "
                        "unexpectedly: it was killed or crashed (out of memory, a signal, a "
                        "fault in native code). Run with num_workers=0 to see the error in "
                        "the main process.") from None
                if self.timeout and time.monotonic() - start > self.timeout:
                    self.shutdown()
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds "
                                       "waiting for a batch from its workers") from None

    def shutdown(self):
        """Stop the workers (each finishes the batch it is on) and release the queues."""
        self._closed = True
        self._finalizer()


def _shutdown(workers, index_queues, result_queue):
    for q, w in zip(index_queues, workers):
        if w.is_alive():
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
    deadline = time.monotonic() + 5.0
    for w in workers:
        # drain answers so that a worker blocked on a full pipe can reach its stop signal
        while w.is_alive() and time.monotonic() < deadline:
            try:
                result_queue.get(timeout=0.05)
            except (queue.Empty, OSError, EOFError, ValueError):
                pass
            w.join(timeout=0.05)
    for w in workers:
        if w.is_alive():
            w.terminate()
            w.join(timeout=1.0)
    for q in list(index_queues) + [result_queue]:
        try:
            q.cancel_join_thread()
            q.close()
        except (OSError, ValueError):
            pass

