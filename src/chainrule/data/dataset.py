"""Datasets (indexable collections of samples) and ways to split them."""
import math

import numpy as np

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor


class Dataset:
    """A collection of samples: subclasses define `__len__` and `__getitem__(i)`.

    >>> import chainrule as cr
    >>> class Squares(cr.data.Dataset):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return float(i), float(i * i)
    >>> Squares()[3]
    (3.0, 9.0)
    """

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension (inputs, labels, ...);
    `ds[i]` is a tuple of the i-th rows. Batches are taken by fancy indexing all at once.

    >>> import chainrule as cr
    >>> ds = cr.data.TensorDataset(cr.zeros(5, 3), cr.arange(5))
    >>> len(ds), ds[2][1].item()
    (5, 2)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ShapeError("TensorDataset needs at least one tensor")
        arrays = [t._data if isinstance(t, Tensor) else
                  backend.to_array(t, t.dtype if backend.is_array(t) else None) for t in tensors]
        sizes = [a.shape[0] if a.ndim else None for a in arrays]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ShapeError(f"TensorDataset: tensors must share their first dimension (one row "
                             f"per sample); got shapes {shapes}")
        self.arrays = arrays

    @property
    def tensors(self):
        return tuple(Tensor._wrap(a) for a in self.arrays)

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(Tensor._wrap(a[index]) for a in self.arrays)

    def _batch(self, indices):
        # host indices go to a device array's device (one refuses host index arrays, as
        # CuPy's may)
        return tuple(Tensor._wrap(a[backend.beside(indices, a)]) for a in self.arrays)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order.

    >>> import chainrule as cr
    >>> sub = cr.data.Subset(cr.data.TensorDataset(cr.arange(5) * 10), [4, 0])
    >>> len(sub), sub[0][0].item()
    (2, 40)
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def _batch(self, indices):
        return self.dataset._batch(self.indices[indices])


def _has_batch(dataset):
    return callable(getattr(dataset, "_batch", None)) and (
        not isinstance(dataset, Subset) or _has_batch(dataset.dataset))


def random_split(dataset, lengths, generator=None, *, seed=None):
    """Split into non-overlapping Subsets of the given lengths (or fractions summing to 1,
    remainders going to the first parts, as in PyTorch). The order is drawn from `generator`
    (a cr.Generator, as in PyTorch), or from `seed` (an int), else from chainrule's
    generator, so `cr.manual_seed` fixes the split.

    >>> import chainrule as cr
    >>> a, b = cr.data.random_split(cr.data.TensorDataset(cr.zeros(10)), [0.8, 0.2], seed=0)
    >>> len(a), len(b)
    (8, 2)
    >>> g = cr.Generator().manual_seed(42)
    >>> [len(s) for s in cr.data.random_split(range(5), [3, 2], generator=g)]
    [3, 2]
    """
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        generator, seed = None, generator   # random_split(ds, lengths, 0): a seed, as before
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n or any(x < 0 for x in lengths):
        raise ShapeError(f"random_split: lengths {lengths} must be >= 0 and sum to the "
                         f"dataset's length {n} (or be fractions summing to 1)")
    if generator is not None and seed is not None:
        raise TypeError("random_split: give generator= or seed=, not both")
    rng = backend.rng(generator) if seed is None else np.random.default_rng(seed)
    order = rng.permutation(n)
    bounds = np.cumsum([0] + lengths)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def train_val_split(dataset, val_fraction=0.2, seed=None):
    """(train, validation) Subsets, the last `val_fraction` of a random order held out.

    >>> import chainrule as cr
    >>> train, val = cr.data.train_val_split(cr.data.TensorDataset(cr.zeros(10)), 0.3, seed=1)
    >>> len(train), len(val)
    (7, 3)
    """
    if not 0 < val_fraction < 1:
        raise ShapeError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}")
    n = len(dataset)
    n_val = int(round(n * val_fraction))
    if n_val == 0 or n_val == n:
        raise ShapeError(f"train_val_split: {n} samples with val_fraction={val_fraction} leave "
                         "an empty side; use more data or another fraction")
    return random_split(dataset, [n - n_val, n_val], seed=seed)
