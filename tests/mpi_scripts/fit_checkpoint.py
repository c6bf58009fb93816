"""Run as `mpiexec -n 2 python fit_checkpoint.py FOLDER OUT.json`.

fit(distributed=True): each rank trains its shard; the history is the same on every rank;
only rank 0 writes checkpoints (and no temporary file is left); 2 epochs + resume to 4 equal
4 uninterrupted epochs bit for bit; a checkpoint from another world size is refused; the
DistributedSampler's shards cover the data exactly once per epoch. Rank 0 writes JSON.
"""
import json
import os
import sys

import numpy as np

import chainrule as cr
import chainrule.distributed as dist
import chainrule.io
from chainrule import nn, optim
from chainrule.data import DataLoader, DistributedSampler, TensorDataset
from chainrule.errors import CheckpointError
from chainrule.train import fit

dist.init_process_group("mpi", timeout=60)
RANK, WORLD = dist.get_rank(), dist.get_world_size()
assert WORLD == 2, f"run with mpiexec -n 2 (world size {WORLD})"
folder, out = sys.argv[1], sys.argv[2]

saves = []
_save = chainrule.io.save


def counting_save(obj, path, metadata=None):
    saves.append(os.path.basename(path))
    return _save(obj, path, metadata=metadata)


chainrule.io.save = counting_save

X, y = cr.data.two_moons(203, seed=0)       # 203: the shards need padding
Xv, yv = cr.data.two_moons(61, seed=1)


def run(epochs, ckpt, resume=None, seed=0):
    cr.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.BatchNorm1d(16), nn.Linear(16, 2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True, seed=5)
    history = fit(model, nn.CrossEntropyLoss(), opt, loader,
                  DataLoader(TensorDataset(Xv, yv), batch_size=16), epochs=epochs,
                  scheduler=sched, checkpoint_dir=ckpt, early_stopping=10,
                  progress=True, resume=resume, distributed=True)
    state = np.concatenate([v.numpy().reshape(-1).astype(np.float64)
                            for v in model.state_dict().values()])
    return history, state


a_dir, b_dir = os.path.join(folder, "a"), os.path.join(folder, "b")
hist_a, state_a = run(4, a_dir)
hist_b, _ = run(2, b_dir)
hist_b, state_b = run(4, b_dir, resume=True, seed=2)   # another init: resume replaces it

rows = {k: v for k, v in hist_a.items() if k != "time"}
gathered = [None] * WORLD
dist.all_gather_object(gathered, (rows, state_a, saves))

# a checkpoint from a job of another size is refused (on every rank)
refused = False
if RANK == 0:
    ckpt = cr.load(os.path.join(a_dir, "last.safetensors"))
    ckpt["distributed"]["world_size"] = 3
    cr.save(ckpt, os.path.join(folder, "three.safetensors"))
dist.barrier()
try:
    run(5, os.path.join(folder, "c"), resume=os.path.join(folder, "three.safetensors"))
except CheckpointError as exc:
    refused = "mpiexec -n 3" in str(exc)

# DistributedSampler: the ranks' shards cover the data once per epoch (with padding)
n = 203
covers = []
for epoch in range(3):
    sampler = DistributedSampler(TensorDataset(X, y), shuffle=True, seed=7)
    sampler.set_epoch(epoch)
    shards = [None] * WORLD
    dist.all_gather_object(shards, list(sampler))
    counts = np.bincount(np.concatenate(shards), minlength=n)
    covers.append(dict(every_sample=bool((counts >= 1).all()),
                       padded=int(counts.sum() - n), equal=len(shards[0]) == len(shards[1]),
                       order=shards[0][:5]))

if RANK == 0:
    result = dict(
        epochs=hist_a.epochs, stop_reason=hist_a.stop_reason,
        history_same_on_ranks=gathered[0][0] == gathered[1][0],
        weights_same_on_ranks=bool(np.array_equal(gathered[0][1], gathered[1][1])),
        saves_rank0=gathered[0][2], saves_rank1=gathered[1][2],
        resume_equal=bool(np.array_equal(state_a, state_b)),
        resume_history_equal=({k: v for k, v in hist_b.items() if k != "time"} == rows),
        files_a=sorted(os.listdir(a_dir)), refused_other_world_size=refused,
        sampler=covers, loss=hist_a["loss"], val_accuracy=hist_a["val_accuracy"])
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
dist.destroy_process_group()
