"""DataLoader: batches from a Dataset, optionally shuffled by its own seeded generator, with
a resumable position so a checkpointed run continues with exactly the same batches."""
import math
import numbers

import numpy as np

from .. import backend
from ..errors import CheckpointError, ShapeError
from ..tensor import Tensor
from . import worker
from .dataset import _has_batch


def default_collate(samples):
    """Stack a list of samples into a batch: tuples/lists position by position, dicts key by
    key, tensors/arrays/numbers along a new first axis (as Tensors).

    >>> import chainrule as cr
    >>> x, y = cr.data.default_collate([(cr.tensor([1.0, 2.0]), 0), (cr.tensor([3.0, 4.0]), 1)])
    >>> x.shape, y.tolist()
    ((2, 2), [0, 1])
    """
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, Tensor):
        arrays = [s._data for s in samples]
    elif isinstance(first, (np.ndarray, numbers.Number, np.generic)):
        arrays = [backend.to_array(s) for s in samples]
    else:
        raise TypeError(f"default_collate: cannot batch samples of type "
                        f"{type(first).__name__}; pass collate_fn=")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ShapeError(f"default_collate: samples of different shapes {sorted(shapes)} cannot "
                         "be stacked into one batch; pad them or pass collate_fn=")
    return Tensor._wrap(np.stack(arrays))


class DataLoader:
    """Iterate over `dataset` in batches.

    shuffle=True draws a new order each epoch from the loader's own generator (`generator=`, a
    cr.Generator as in PyTorch, or `seed`, or a seed drawn once from chainrule's generator, so
    `cr.manual_seed` fixes it); `state_dict()`
    records that generator and the position inside the epoch, so a resumed run sees the same
    remaining batches. Datasets built from tensors are batched by one fancy index per tensor.
    `sampler=` (e.g. a DistributedSampler) gives the order of indices instead, as in PyTorch
    (not together with shuffle=True); a resumed run continues at the same batch of the order
    the sampler gives that epoch.

    num_workers=k fetches and collates batches in k worker processes (data/worker.py: seeded
    per worker, batches in order, a worker's exception raised here with its traceback;
    worker_init_fn, persistent_workers, prefetch_factor, timeout and multiprocessing_context
    as in PyTorch).

    Devices: batches are made where the dataset's tensors are (usually the host); move each to
    the model's device with `x.to(device)` (or let `train.fit(..., device=)` do it).
    pin_memory (PyTorch's page-locked host buffers for faster copies to a GPU) is accepted and
    changes nothing: chainrule's copies go through the device library's own transfer.

    >>> import chainrule as cr
    >>> ds = cr.data.TensorDataset(cr.arange(10.0), cr.arange(10))
    >>> loader = cr.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0, drop_last=True)
    >>> [x.shape for x, y in loader]
    [(4,), (4,)]
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
                 seed=None, generator=None, sampler=None, num_workers=0, worker_init_fn=None,
                 persistent_workers=False, prefetch_factor=None, timeout=0,
                 multiprocessing_context=None, pin_memory=False, pin_memory_device=""):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ShapeError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler= gives the order itself; it cannot be combined "
                             "with shuffle=True (shuffle in the sampler, e.g. "
                             "DistributedSampler(dataset, shuffle=True))")
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn
        if generator is None:
            if seed is None:
                seed = int(backend.rng().integers(2 ** 63)) if shuffle else 0
            generator = np.random.default_rng(seed)
        self.generator = generator
        self._epoch_start = None  # generator state before the current epoch's order
        self._position = 0        # batches handed out in the current epoch
        self._skip = 0            # batches to skip at the next epoch (after load_state_dict)
        _check_workers(num_workers, persistent_workers, prefetch_factor, timeout)
        self.num_workers, self.worker_init_fn = num_workers, worker_init_fn
        self.persistent_workers, self.timeout = bool(persistent_workers), timeout
        self.prefetch_factor = prefetch_factor
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory, self.pin_memory_device = bool(pin_memory), pin_memory_device
        self._pool = None         # the worker processes kept by persistent_workers=True

    def _rng(self):
        """The NumPy generator behind `generator` (a cr.Generator is looked up each time, so
        re-seeding it reseeds the loader, as in PyTorch)."""
        return backend.rng(self.generator)

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        self._epoch_start = self._rng().bit_generator.state
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            order = self._rng().permutation(n) if self.shuffle else np.arange(n)
        skip, self._skip = self._skip, 0
        self._position = skip
        fetched = self._from_workers(order, skip) if self.num_workers else None
        try:
            for b in range(skip, len(self)):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                self._position = b + 1
                yield self._fetch(idx) if fetched is None else next(fetched)
        finally:
            if fetched is not None:
                fetched.close()     # a loop left early stops the workers too
        self._epoch_start, self._position = None, 0

    def _from_workers(self, order, skip):
        """The batches from `skip` on, fetched by the worker processes, in order."""
        pool = self._pool
        if pool is None:
            pool = worker.WorkerPool(
                _Fetcher(self.dataset, self.collate_fn), self.dataset, self.num_workers,
                worker.base_seed(self._epoch_start), self.worker_init_fn,
                self.multiprocessing_context, self.prefetch_factor or 2, self.timeout)
            if self.persistent_workers:
                self._pool = pool
        batches = (order[b * self.batch_size:(b + 1) * self.batch_size]
                   for b in range(skip, len(self)))
        try:
            yield from pool.run(batches)
        finally:
            if pool is not self._pool:
                pool.shutdown()

    def _fetch(self, idx):
        if self.collate_fn is None and _has_batch(self.dataset):
            return self.dataset._batch(idx)
        collate = self.collate_fn or default_collate
        return collate([self.dataset[int(i)] for i in idx])

    def state_dict(self):
        """Where the data order stands: the generator (as it was at the start of the current
        epoch, if one is under way) and how many batches of that epoch were handed out."""
        if self._epoch_start is not None and self._position:
            return {"generator": self._epoch_start, "position": self._position}
        return {"generator": self._rng().bit_generator.state, "position": 0}

    def load_state_dict(self, state):
        try:
            self._rng().bit_generator.state = state["generator"]
            self._skip = int(state["position"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"DataLoader.load_state_dict: not a loader state ({exc!r}); "
                                  "expected {'generator': ..., 'position': n}") from None
        self._epoch_start, self._position = None, 0


class _Fetcher:
    """Fetches and collates one batch of indices: what a worker process runs (picklable when
    the dataset and collate_fn are)."""

    def __init__(self, dataset, collate_fn):
        self.dataset, self.collate_fn = dataset, collate_fn

    def __call__(self, idx):
        if self.collate_fn is None and _has_batch(self.dataset):
            return self.dataset._batch(idx)
        collate = self.collate_fn or default_collate
        return collate([self.dataset[int(i)] for i in idx])


def _check_workers(num_workers, persistent_workers, prefetch_factor, timeout):
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                         f"disable multiprocessing (got {num_workers!r})")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    if prefetch_factor is not None and num_workers == 0:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing. "
                         "let num_workers > 0 to enable multiprocessing, otherwise set "
                         "prefetch_factor to None.")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
