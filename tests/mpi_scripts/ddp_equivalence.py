"""Run as `mpiexec -n 2 python ddp_equivalence.py OUT.json`.

DistributedDataParallel on 2 ranks with batch b per rank, for K steps, must leave the same
float64 parameters (to 1e-12) as one process with batch 2b on the same samples: SGD with
momentum and Adam, with and without no_sync accumulation, one bucket or many, the overlap on
and off, a parameter used twice, a penalty on the parameters outside the model, a backward on
two roots. Also: weights broadcast from rank 0 at wrap time, BatchNorm buffers from rank 0
before each forward, unused parameters. Rank 0 writes the results as JSON.
"""
import contextlib
import json
import sys

import numpy as np

import chainrule as cr
import chainrule.distributed as dist
from chainrule import nn, optim
from chainrule.nn import functional as F
from chainrule.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi", timeout=60)
RANK, WORLD = dist.get_rank(), dist.get_world_size()
assert WORLD == 2, f"run with mpiexec -n 2 (world size {WORLD})"
B, K = 4, 5
rng = np.random.default_rng(0)
X = rng.standard_normal((WORLD * B * K * 3, 6))
Y = rng.integers(0, 3, len(X))


class Shared(nn.Module):
    """One Linear applied twice (two graph edges into each of its parameters)."""

    def __init__(self):
        super().__init__()
        self.inp, self.mid, self.out = nn.Linear(6, 16), nn.Linear(16, 16), nn.Linear(16, 3)

    def forward(self, x):
        h = self.inp(x).tanh()
        h = self.mid(h).tanh()
        return self.out(self.mid(h).tanh())


def make_model(kind, seed):
    cr.manual_seed(seed)
    if kind == "shared":
        return Shared().double()
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3)).double()


def make_opt(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.1, momentum=0.9)
    return optim.Adam(params, lr=0.01)


def batch(rows):
    return cr.tensor(X[rows]), cr.tensor(Y[rows])


def backward(model, x, y, case, scale):
    loss = F.cross_entropy(model(x), y) * scale
    if case.get("penalty"):
        penalty = sum(((p * p).sum() for p in model.parameters()), cr.tensor(0.0, dtype=cr.float64))
        penalty = penalty * 1e-3
        if case.get("two_roots"):
            cr.autograd.backward([loss, penalty * scale])
            return
        loss = loss + penalty * scale
    loss.backward()


def params_of(model):
    return np.concatenate([p.numpy().reshape(-1) for p in model.parameters()])


def run_ddp(case):
    model = make_model(case.get("model", "mlp"), seed=10 + RANK)   # ranks differ until wrapped
    ddp = DDP(model, bucket_cap_mb=case.get("cap"), overlap=case.get("overlap", True))
    opt = make_opt(case["opt"], ddp.parameters())
    A = case.get("accumulate", 1)
    for step in range(K):
        opt.zero_grad()
        for a in range(A):
            start = (step * A + a) * WORLD * B
            x, y = batch(slice(start + RANK * B, start + (RANK + 1) * B))
            sync = contextlib.nullcontext() if a == A - 1 else ddp.no_sync()
            with sync:
                backward(ddp, x, y, case, 1.0 / A)
        opt.step()
    return params_of(model), ddp.reducer


def run_single(case):
    model = make_model(case.get("model", "mlp"), seed=10)
    opt = make_opt(case["opt"], model.parameters())
    A = case.get("accumulate", 1)
    for step in range(K):
        opt.zero_grad()
        start = step * A * WORLD * B
        x, y = batch(slice(start, start + A * WORLD * B))    # one batch of 2b·A samples
        backward(model, x, y, case, 1.0)
        opt.step()
    return params_of(model)


CASES = {
    "sgd_momentum": dict(opt="sgd"),
    "adam": dict(opt="adam"),
    "sgd_momentum_no_sync_x3": dict(opt="sgd", accumulate=3),
    "adam_no_sync_x2": dict(opt="adam", accumulate=2),
    "sgd_one_bucket_per_param": dict(opt="sgd", cap=1e-6),
    "adam_overlap_off": dict(opt="adam", overlap=False),
    "adam_shared_layer_many_buckets": dict(opt="adam", model="shared", cap=1e-6),
    "sgd_penalty_outside_model": dict(opt="sgd", penalty=True, cap=1e-6),
    "adam_two_roots_stale_buckets": dict(opt="adam", penalty=True, two_roots=True, cap=1e-6),
    "adam_two_roots_no_sync_x2": dict(opt="adam", penalty=True, two_roots=True, accumulate=2),
}

results = {}
for name, case in CASES.items():
    got, reducer = run_ddp(case)
    both = [None] * WORLD
    dist.all_gather_object(both, got)
    want = run_single(case)
    results[name] = dict(max_abs_diff=float(np.max(np.abs(got - want))),
                         ranks_identical=bool(np.array_equal(both[0], both[1])),
                         buckets=len(reducer.buckets), starts=reducer.counts)


# ----- unused parameters: a layer only rank 1 uses, a layer nobody uses -----
class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.never = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x, use_b):
        out = self.a(x)
        return out + self.b(x) if use_b else out


cr.manual_seed(0)
net = Branchy().double()
ddp = DDP(net, bucket_cap_mb=1e-6)
xs = cr.tensor(np.arange(6.0).reshape(2, 3) + RANK)
ddp(xs, use_b=RANK == 1).sum().backward()
local_b = None
if RANK == 1:   # what rank 1 alone computed for b.weight: the average is half of it
    cr.manual_seed(0)
    ref = Branchy().double()
    ref(xs, use_b=True).sum().backward()
    local_b = ref.b.weight.grad.numpy()
local_b = dist.broadcast_object(local_b, src=1)
grads = [None] * WORLD
dist.all_gather_object(grads, net.b.weight.grad.numpy())
results["unused"] = dict(
    b_grad_is_half_of_rank1=bool(np.allclose(grads[0], local_b / 2, rtol=0, atol=1e-15)),
    b_grad_same_on_ranks=bool(np.array_equal(grads[0], grads[1])),
    never_used_grad_is_none=net.never.weight.grad is None)

# ----- BatchNorm buffers: rank 0's are broadcast before every synchronised forward -----
cr.manual_seed(0)
bn_net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
bn_net[1].running_mean.numpy()[...] = RANK + 1.0    # differ before the wrap
bn = DDP(bn_net)
after_wrap = bn_net[1].running_mean.numpy().copy()
opt = optim.SGD(bn.parameters(), lr=0.1)
for step in range(3):
    x = cr.tensor(rng.standard_normal((8, 4)) + RANK)      # ranks see different data
    opt.zero_grad()
    bn(x).sum().backward()
    opt.step()
differs_after_training = bn_net[1].running_mean.numpy().copy()
# the engine's watchers are gone once a reduction is done
results["watchers_left_after_backward"] = len(cr.autograd._thread_observers()) + len(
    cr.autograd._thread_finishers())
bn.eval()
bn(cr.tensor(np.ones((2, 4))))     # grad enabled, eval mode: buffers broadcast, not updated
gathered = [None] * WORLD
dist.all_gather_object(gathered, (after_wrap, differs_after_training,
                                  bn_net[1].running_mean.numpy().copy()))
results["batchnorm"] = dict(
    equal_after_wrap=bool(np.array_equal(gathered[0][0], gathered[1][0])),
    local_stats_differ_after_step=not np.array_equal(gathered[0][1], gathered[1][1]),
    equal_after_next_forward=bool(np.array_equal(gathered[0][2], gathered[1][2])))

# ----- the collectives themselves -----
coll = {}
for op, want in ((dist.ReduceOp.SUM, [3.0, 3.0]), (dist.ReduceOp.AVG, [1.5, 1.5]),
                 (dist.ReduceOp.MAX, [2.0, 2.0]), (dist.ReduceOp.MIN, [1.0, 1.0]),
                 (dist.ReduceOp.PRODUCT, [2.0, 2.0])):
    t = cr.ones(2) * (RANK + 1)
    dist.all_reduce(t, op=op)
    coll[op] = t.tolist() == want
strided = cr.tensor(np.arange(6.0).reshape(2, 3) * (RANK + 1)).T     # not contiguous
dist.all_reduce(strided)
coll["non_contiguous"] = strided.tolist() == (np.arange(6.0).reshape(2, 3) * 3).T.tolist()
t = cr.tensor([float(RANK)] * 3)
work = dist.all_reduce(t, async_op=True)
work.wait()
coll["async"] = t.tolist() == [1.0, 1.0, 1.0] and work.is_completed()
t = cr.tensor([RANK, RANK + 10])
dist.broadcast(t, src=1)
coll["broadcast"] = t.tolist() == [1, 11]
parts = [cr.zeros(2, dtype=cr.int64) for _ in range(WORLD)]
dist.all_gather(parts, cr.tensor([RANK, -RANK]))
coll["all_gather"] = [p.tolist() for p in parts] == [[0, 0], [1, -1]]
objs = [None] * WORLD
dist.all_gather_object(objs, {"rank": RANK, "w": np.full(2, RANK), "t": (RANK, "x")})
coll["all_gather_object"] = [o["rank"] for o in objs] == [0, 1] and objs[1]["w"].tolist() == [
    1, 1] and objs[0]["t"] == (0, "x")
box = [RANK * 7, "from"]
dist.broadcast_object_list(box, src=1)
coll["broadcast_object_list"] = box == [7, "from"]
results["collectives"] = coll

if RANK == 0:
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=1)
dist.destroy_process_group()
