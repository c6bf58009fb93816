"""DataLoader(num_workers=k): real worker processes, batches in order and identical to the
in-process loader, seeded per worker, a worker's exception raised in the main process with its
traceback, clean shutdown (end of epoch, a loop left early, persistent workers), a dead worker
detected; the argument checks PyTorch makes."""
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import DataLoader, Dataset, TensorDataset, get_worker_info

torch = pytest.importorskip("torch")


class Numbers(Dataset):
    """Sample i is (i, the worker that fetched it, a random draw); fails at `bad`."""

    def __init__(self, n=23, bad=None, slow=0.0):
        self.n, self.bad, self.slow = n, bad, slow

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"sample {i} is broken")
        if self.slow:
            time.sleep(self.slow * (i % 3))      # answers arrive out of order
        info = get_worker_info()
        return (cr.tensor(float(i)), cr.tensor(-1 if info is None else info.id),
                cr.rand(1))


def _children():
    return [p for p in multiprocessing.active_children() if "DataLoader" in p.name]


def _wait_gone(timeout=10.0):
    end = time.monotonic() + timeout
    while _children() and time.monotonic() < end:
        time.sleep(0.05)
    return not _children()


def test_batches_in_order_and_equal_to_the_in_process_loader():
    ds = Numbers(slow=0.01)
    plain = [x.tolist() for x, _, _ in DataLoader(ds, batch_size=4, shuffle=True, seed=5)]
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=5, num_workers=3)
    got = []
    workers = set()
    for x, w, _ in loader:
        got.append(x.tolist())
        workers.update(w.tolist())
    assert got == plain
    assert workers == {0, 1, 2}                # really fetched by three processes
    assert _wait_gone()                        # shut down at the end of the epoch


def test_tensor_datasets_and_drop_last():
    X, y = cr.arange(50.0).reshape(25, 2), cr.arange(25)
    a = [(xb.tolist(), yb.tolist()) for xb, yb in
         DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=1, drop_last=True)]
    b = [(xb.tolist(), yb.tolist()) for xb, yb in
         DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True, seed=1, drop_last=True,
                    num_workers=2)]
    assert a == b and len(b) == 6


def test_workers_are_seeded_reproducibly_and_differently():
    def draws():
        loader = DataLoader(Numbers(n=12), batch_size=2, shuffle=True, seed=7, num_workers=2)
        return [(w.tolist(), r.tolist()) for _, w, r in loader]
    first, second = draws(), draws()
    assert first == second
    by_worker = {}
    for w, r in first:
        by_worker.setdefault(w[0], []).append(r)
    assert by_worker[0][0] != by_worker[1][0]   # each worker has its own stream


def test_worker_init_fn_and_worker_info():
    def init(worker_id):
        info = get_worker_info()
        assert info.id == worker_id and info.num_workers == 2
        np.random.seed(100 + worker_id)

    class Draw(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return cr.tensor(np.random.randint(1000)), cr.tensor(get_worker_info().seed)
    out = [(a.tolist(), s.tolist()) for a, s in
           DataLoader(Draw(), batch_size=1, num_workers=2, worker_init_fn=init)]
    assert out[0][0] == [np.random.RandomState(100).randint(1000)]
    assert out[1][0] == [np.random.RandomState(101).randint(1000)]
    assert out[1][1][0] == out[0][1][0] + 1      # seeds are base_seed + worker id
    assert get_worker_info() is None


def test_a_worker_exception_is_raised_here_with_its_traceback():
    loader = DataLoader(Numbers(bad=9), batch_size=4, num_workers=2)
    seen = []
    with pytest.raises(ValueError) as info:
        for x, _, _ in loader:
            seen.append(x.tolist())
    msg = str(info.value)
    assert "Caught ValueError in DataLoader worker process 0" in msg
    assert "sample 9 is broken" in msg and "Traceback" in msg and "__getitem__" in msg
    assert seen == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]   # batches before it arrived
    assert _wait_gone()
    # PyTorch raises the same exception type
    tds = [torch.tensor(float(i)) for i in range(12)]

    class TorchBad(torch.utils.data.Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, i):
            if i == 9:
                raise ValueError("broken")
            return tds[i]
    with pytest.raises(ValueError, match="Caught ValueError in DataLoader worker process 0"):
        list(torch.utils.data.DataLoader(TorchBad(), batch_size=4, num_workers=2))


def test_leaving_the_loop_early_shuts_the_workers_down():
    loader = DataLoader(Numbers(n=200), batch_size=2, num_workers=2)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    assert _wait_gone()


def test_persistent_workers_live_across_epochs():
    loader = DataLoader(Numbers(), batch_size=5, num_workers=2, persistent_workers=True)
    first = [x.tolist() for x, _, _ in loader]
    pids = [w.pid for w in loader._pool.workers]
    for i, _ in enumerate(loader):           # an epoch left early does not disturb the next
        if i == 1:
            break
    second = [x.tolist() for x, _, _ in loader]
    assert first == second
    assert [w.pid for w in loader._pool.workers] == pids and all(
        w.is_alive() for w in loader._pool.workers)
    loader._pool.shutdown()
    assert _wait_gone()


def test_resume_from_state_dict_with_workers():
    ds = Numbers(n=20)
    loader = DataLoader(ds, batch_size=3, shuffle=True, seed=2, num_workers=2)
    it = iter(loader)
    head = [next(it)[0].tolist() for _ in range(2)]
    state = loader.state_dict()
    it.close()
    again = DataLoader(ds, batch_size=3, shuffle=True, seed=99, num_workers=2)
    again.load_state_dict(state)
    rest = [x.tolist() for x, _, _ in again]
    full = [x.tolist() for x, _, _ in DataLoader(ds, batch_size=3, shuffle=True, seed=2)]
    assert head + rest == full


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_worker_raises_instead_of_hanging():
    class Killer(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            if i == 5:
                os.kill(os.getpid(), signal.SIGKILL)
            return cr.tensor(float(i))
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(DataLoader(Killer(), batch_size=2, num_workers=2))
    assert _wait_gone()


def test_spawned_workers():
    X = cr.arange(12.0)
    loader = DataLoader(TensorDataset(X), batch_size=5, num_workers=2,
                        multiprocessing_context="spawn")
    assert [x.tolist() for (x,) in loader] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


@pytest.mark.parametrize("kwargs, words", [
    (dict(num_workers=-1), "non-negative"),
    (dict(persistent_workers=True), "num_workers > 0"),
    (dict(prefetch_factor=2), "prefetch_factor"),
])
def test_argument_errors_match_pytorch(kwargs, words):
    with pytest.raises(ValueError, match=words):
        DataLoader(Numbers(), **kwargs)
    with pytest.raises(ValueError, match=words):
        torch.utils.data.DataLoader([1, 2, 3], **kwargs)
