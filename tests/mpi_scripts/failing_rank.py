"""Run as `mpiexec -n 2 python failing_rank.py raise|timeout`.

raise:   both ranks train with DistributedDataParallel; at step 3 rank 1 raises, while rank 0
         goes on into the gradient all-reduce. The job must end (non-zero) with rank 1's
         traceback, not hang.
timeout: rank 1 stops answering (sleeps 60 s); rank 0's all_reduce has a 1 s timeout and must
         raise a DistributedError naming the operation, which ends the job.
"""
import sys
import time

import chainrule as cr
import chainrule.distributed as dist
from chainrule import nn, optim
from chainrule.nn.parallel import DistributedDataParallel

mode = sys.argv[1]
dist.init_process_group("mpi", timeout=1.0 if mode == "timeout" else 60)
rank = dist.get_rank()

if mode == "timeout":
    if rank == 1:
        time.sleep(60)
    dist.all_reduce(cr.ones(4))
    sys.exit(0)

cr.manual_seed(0)
model = DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
opt = optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    x, y = cr.randn(8, 4), cr.randint(0, 2, (8,))
    if step == 3 and rank == 1:
        raise ValueError(f"bad batch on rank {rank} at step {step}")
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
print(f"rank {rank} finished", flush=True)
