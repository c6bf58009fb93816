"""Samplers: the order in which a DataLoader visits a dataset's indices (`sampler=`).

DistributedSampler gives each rank of a data-parallel job its own equal share of every
epoch, as PyTorch's does.
"""
import math

import numpy as np


class Sampler:
    """Base class: iterate over dataset indices; `__len__` says how many.

    >>> import chainrule as cr
    >>> class Reversed(cr.data.Sampler):
    ...     def __init__(self, n): self.n = n
    ...     def __iter__(self): return iter(range(self.n - 1, -1, -1))
    ...     def __len__(self): return self.n
    >>> ds = cr.data.TensorDataset(cr.arange(4.0))
    >>> [x.tolist() for (x,) in cr.data.DataLoader(ds, batch_size=2, sampler=Reversed(4))]
    [[3.0, 2.0], [1.0, 0.0]]
    """

    def __iter__(self):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(dataset) - 1.

    >>> import chainrule as cr
    >>> list(cr.data.SequentialSampler(cr.data.TensorDataset(cr.zeros(3))))
    [0, 1, 2]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class DistributedSampler(Sampler):
    """This rank's share of `dataset` for one epoch: every rank gets the same number of
    indices, together they cover the dataset (PyTorch's `DistributedSampler`).

    With shuffle=True the order is a permutation drawn from `seed + epoch`, the same on every
    rank, so call `set_epoch(epoch)` at the start of each epoch for a new order. When the
    dataset does not divide evenly, the first indices of that order are repeated to pad it
    (drop_last=False), or the tail is dropped (drop_last=True). Rank r takes positions
    r, r + N, r + 2N, ... of the order. num_replicas and rank default to the process group's
    world size and rank (`chainrule.distributed`).

    >>> import chainrule as cr
    >>> ds = cr.data.TensorDataset(cr.arange(10.0))
    >>> [list(cr.data.DistributedSampler(ds, num_replicas=3, rank=r, shuffle=False))
    ...  for r in range(3)]
    [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_initialized():
                raise ValueError("DistributedSampler: pass num_replicas= and rank=, or call "
                                 "chainrule.distributed.init_process_group('mpi') first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got "
                             f"{num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {num_replicas - 1}], "
                             f"got {rank!r}")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0:
                order = np.concatenate([order, np.resize(order, pad)]) if n else order
        else:
            order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Use epoch `epoch`'s order (call it before each epoch when shuffling)."""
        self.epoch = int(epoch)
