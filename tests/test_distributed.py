"""Data-parallel training on MPI (issue 15): chainrule.distributed, DistributedDataParallel,
DistributedSampler, fit(distributed=True), `chainrule train --distributed`.

The multi-process tests run the scripts in tests/mpi_scripts/ under `mpiexec -n 2` (MPICH
from the `mpich` wheel, found beside the Python executable or on PATH) and read what rank 0
wrote; they are skipped, with the reason, only when mpi4py or mpiexec is missing. The rest
runs in this process without MPI."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import time

import numpy as np
import pytest

import chainrule as cr
import chainrule.distributed as dist
from chainrule import nn
from chainrule.data import DataLoader, DistributedSampler, TensorDataset
from chainrule.errors import DistributedError

HERE = pathlib.Path(__file__).resolve().parent
SCRIPTS = HERE / "mpi_scripts"
SRC = HERE.parent / "src"


# ----- DistributedSampler and DataLoader(sampler=), no MPI needed -----
@pytest.mark.parametrize("n,world", [(10, 2), (10, 3), (7, 4), (3, 4), (12, 4), (1, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_shards_cover_every_sample_once_per_epoch(n, world, shuffle):
    ds = TensorDataset(cr.arange(float(n)))
    for epoch in range(3):
        shards = []
        for rank in range(world):
            s = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=3)
            s.set_epoch(epoch)
            shards.append(list(s))
        sizes = {len(sh) for sh in shards}
        assert sizes == {-(-n // world)} and len(shards[0]) == len(s)   # equal shards
        counts = np.bincount(np.concatenate(shards), minlength=n)
        assert (counts >= 1).all() and counts.sum() - n == world * len(s) - n < world


def test_sampler_pads_with_the_first_indices_and_drop_last_drops_the_tail():
    ds = TensorDataset(cr.arange(10.0))
    shards = [list(DistributedSampler(ds, 4, r, shuffle=False)) for r in range(4)]
    assert shards == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]     # PyTorch's layout
    dropped = [list(DistributedSampler(ds, 4, r, shuffle=False, drop_last=True))
               for r in range(4)]
    assert dropped == [[0, 4], [1, 5], [2, 6], [3, 7]]
    tiny = [list(DistributedSampler(TensorDataset(cr.arange(2.0)), 5, r, shuffle=False))
            for r in range(5)]
    assert tiny == [[0], [1], [0], [1], [0]]                        # padding repeats cyclically


def test_sampler_order_is_shared_by_the_ranks_and_changes_with_the_epoch():
    ds = TensorDataset(cr.arange(50.0))
    a, b = DistributedSampler(ds, 2, 0, seed=1), DistributedSampler(ds, 2, 1, seed=1)
    first = list(a) + list(b)
    assert sorted(first) == list(range(50))
    a.set_epoch(1)
    assert list(a) != first[:25]
    a.set_epoch(0)
    assert list(a) == first[:25]                                     # deterministic per epoch
    assert list(DistributedSampler(ds, 2, 0, seed=2)) != first[:25]


def test_sampler_refuses_bad_arguments_and_needs_a_group_for_defaults():
    ds = TensorDataset(cr.arange(4.0))
    with pytest.raises(ValueError, match="rank must be in"):
        DistributedSampler(ds, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(ds, num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="init_process_group"):
        DistributedSampler(ds)


def test_dataloader_takes_a_sampler_like_pytorch():
    ds = TensorDataset(cr.arange(10.0), cr.arange(10))
    sampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    loader = DataLoader(ds, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [y.tolist() for _, y in loader] == [[1, 3], [5, 7], [9]]
    assert len(DataLoader(ds, batch_size=2, sampler=sampler, drop_last=True)) == 2
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(ds, batch_size=2, sampler=sampler, shuffle=True)
    # resumable: the position inside the sampler's order of that epoch
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    again = DataLoader(ds, batch_size=2, sampler=sampler)
    again.load_state_dict(state)
    assert [y.tolist() for _, y in again] == [[5, 7], [9]]


# ----- without a process group -----
def test_import_chainrule_never_imports_mpi4py():
    code = ("import sys, chainrule as cr, chainrule.nn, chainrule.data, chainrule.train, "
            "chainrule.distributed, chainrule.nn.parallel; cr.distributed.is_initialized(); "
            "print('mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_collectives_and_ddp_need_a_process_group():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier,
                 lambda: dist.all_reduce(cr.ones(2)), lambda: dist.broadcast(cr.ones(2), 0)):
        with pytest.raises(DistributedError, match="init_process_group"):
            call()
    with pytest.raises(DistributedError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(DistributedError, match="backend 'nccl'"):
        dist.init_process_group("nccl")
    assert issubclass(DistributedError, RuntimeError)


def test_buckets_follow_reverse_order_dtype_and_size():
    from chainrule.nn.parallel import MIB, _buckets
    params = [nn.Parameter(cr.zeros(n)) for n in (10, 300_000, 20, 5)]
    b = _buckets(params, 2 * MIB)
    assert [[p.numel() for p in bk.params] for bk in b] == [[5, 20], [300_000, 10]]
    one_each = _buckets(params, 1)
    assert [len(bk.params) for bk in one_each] == [1, 1, 1, 1]
    mixed = _buckets([nn.Parameter(cr.zeros(3)), nn.Parameter(cr.zeros(3, dtype=cr.float64))],
                     MIB)
    assert [bk.dtype.name for bk in mixed] == ["float64", "float32"]


def test_observe_done_sees_the_end_of_each_backward_pass():
    x, w = cr.tensor(2.0, requires_grad=True), cr.tensor(3.0, requires_grad=True)
    ends = []
    with cr.autograd.observe(done=lambda leaves: ends.append(
            [(t is x, t.grad.item()) for t in leaves])):
        (x * w).backward()                  # .grad is written when done runs
        cr.autograd.grad(x * x, x)          # writes no .grad: done([])
    (x * w).backward()                      # outside the block: not seen
    assert ends == [[(True, 3.0), (False, 2.0)], []]


# ----- under mpiexec -n 2 -----
def _mpiexec():
    for folder in (pathlib.Path(sys.executable).parent, sysconfig.get_path("scripts")):
        candidate = pathlib.Path(folder) / "mpiexec"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("mpiexec")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]]
                                                      if env.get("PYTHONPATH") else []))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


@pytest.fixture(scope="module")
def mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'chainrule[distributed]')")
    exe = _mpiexec()
    if exe is None:
        pytest.skip("no mpiexec beside the Python executable or on PATH (pip install mpich)")
    return exe


def _mpirun(mpiexec, args, timeout=60, cwd=None):
    t0 = time.perf_counter()
    out = subprocess.run([mpiexec, "-n", "2", sys.executable, *map(str, args)],
                         capture_output=True, text=True, timeout=timeout, env=_env(),
                         stdin=subprocess.DEVNULL, cwd=cwd)
    return out, time.perf_counter() - t0


def test_two_ranks_equal_one_process_with_twice_the_batch(mpiexec, tmp_path):
    out, _ = _mpirun(mpiexec, [SCRIPTS / "ddp_equivalence.py", tmp_path / "r.json"])
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    cases = {k: v for k, v in res.items() if isinstance(v, dict) and "max_abs_diff" in v}
    assert len(cases) == 10
    for name, case in cases.items():
        assert case["max_abs_diff"] <= 1e-12, (name, case)
        assert case["ranks_identical"], name
    starts = {name: case["starts"] for name, case in cases.items()}
    assert starts["sgd_one_bucket_per_param"] == {"during_backward": 30, "at_end": 0,
                                                  "stale": 0}   # overlapped, 6 buckets x 5
    assert starts["adam_overlap_off"]["during_backward"] == 0
    assert starts["adam_two_roots_stale_buckets"]["stale"] > 0    # sent again, still exact
    assert res["unused"] == {"b_grad_is_half_of_rank1": True, "b_grad_same_on_ranks": True,
                             "never_used_grad_is_none": True}
    assert res["batchnorm"] == {"equal_after_wrap": True, "local_stats_differ_after_step": True,
                                "equal_after_next_forward": True}
    assert res["watchers_left_after_backward"] == 0
    assert res["collectives"] == dict.fromkeys(res["collectives"], True) and len(
        res["collectives"]) == 11


def test_fit_distributed_checkpoints_on_rank0_and_resumes_exactly(mpiexec, tmp_path):
    out, _ = _mpirun(mpiexec, [SCRIPTS / "fit_checkpoint.py", tmp_path, tmp_path / "r.json"])
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["epochs"] == 4 and res["stop_reason"] == "completed"
    assert res["history_same_on_ranks"] and res["weights_same_on_ranks"]
    assert res["saves_rank1"] == [] and res["saves_rank0"].count("last.safetensors") == 8
    assert res["resume_equal"] and res["resume_history_equal"]
    assert res["files_a"] == ["best.safetensors", "curves.png", "last.safetensors"]
    assert res["refused_other_world_size"]
    for epoch in res["sampler"]:
        assert epoch["every_sample"] and epoch["equal"] and epoch["padded"] == 1
    assert res["sampler"][0]["order"] != res["sampler"][1]["order"]
    # only rank 0 prints: one "resumed" line, the epoch lines of two runs
    assert out.stderr.count("resumed from") == 1
    assert out.stderr.count("epoch 1: loss") == 2


@pytest.mark.parametrize("mode,expect", [
    ("raise", ["[rank 1] Traceback", "ValueError: bad batch on rank 1 at step 3"]),
    ("timeout", ["DistributedError: all_reduce timed out on rank 0 of 2 after 1 s"]),
])
def test_a_failing_rank_ends_the_job_with_its_traceback(mpiexec, mode, expect):
    out, seconds = _mpirun(mpiexec, [SCRIPTS / "failing_rank.py", mode], timeout=50)
    assert out.returncode != 0
    for text in expect:
        assert text in out.stderr, out.stderr
    assert "finished" not in out.stdout
    assert seconds < 30      # rank 1 sleeps 60 s in 'timeout': the abort ended it


def test_chainrule_train_distributed(mpiexec, tmp_path):
    args = ["-m", "chainrule.cli", "train", "--distributed", "--dataset", "moons",
            "--epochs", "2", "--out", tmp_path / "run"]
    out, _ = _mpirun(mpiexec, args, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("test accuracy:") == 1          # rank 0 reports
    assert out.stderr.count("epoch 2: loss") == 1
    assert sorted(os.listdir(tmp_path / "run")) == ["curves.png", "last.safetensors",
                                                    "model.safetensors"]
    again, _ = _mpirun(mpiexec, args[:-4] + ["--epochs", "3", "--resume", "--out",
                                             tmp_path / "run"], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "after 3 epochs" in again.stdout and "resumed from" in again.stderr
