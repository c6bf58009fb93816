"""DistributedDataParallel: one model replicated on every rank, gradients averaged after each
backward pass (PyTorch's `torch.nn.parallel.DistributedDataParallel`).

How the gradients travel. At wrap time the parameters that require grad are laid out, in
reverse registration order (roughly the order backward produces their gradients), in
*buckets*: the first holds about 1 MiB, the others up to `bucket_cap_mb` (25 MiB), one dtype
each. A bucket's gradients are copied into one flat array (plus one "has a gradient" flag
per parameter) and reduced by a single in-place MPI_Iallreduce, so a model makes a few
collective calls per step, not one per parameter. The flat arrays live as long as the wrapper
(MPI moves memory it has moved before several times faster than fresh memory); the averages
are written back into the `.grad` arrays the engine made, so no gradient aliases a bucket.

When they travel. The engine writes `.grad` only when a backward pass ends, and tells its
watchers so (`autograd.observe(done=...)`): there the remaining buckets are reduced. With
`overlap=True` (the default) the wrapper also watches the pass node by node: when it starts,
it counts the graph's edges into each parameter; each parameter's share is summed as it
arrives, in the engine's order (so the result is the engine's to the last bit), and when
every parameter of a bucket has all its shares the bucket is packed and its all-reduce
started while the backward pass goes on through the earlier layers; each later node polls
the requests in flight. Buckets start strictly in index order, so all ranks issue the same
collectives in the same order. A share that arrives for a bucket already sent (a graph the
count did not see, e.g. `autograd.backward` on several roots) marks it stale: it is reduced
again from `.grad` at the end. MPI (MPICH) progresses a non-blocking collective only inside
MPI calls, so the overlap is limited to the polls between nodes (bench/NOTES.md measures it).

Parameters unused on a rank contribute zeros (their flag says so); a parameter no rank used
keeps `.grad` None. Buffers (BatchNorm's running statistics) are broadcast from rank 0 before
each forward that will be reduced, as PyTorch's default `broadcast_buffers=True` does.
`no_sync()` skips the reduction for forward passes inside it (gradient accumulation): the
gradients summed locally are reduced with the next synchronised backward.
"""
import contextlib

from .. import autograd
from .. import backend
from .. import distributed as dist
from ..errors import DistributedError
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor
from .module import Module

np = backend.np

MIB = 1 << 20
FIRST_BUCKET_BYTES = 1 * MIB   # PyTorch's first bucket is small too: its reduction starts early


class DistributedDataParallel(Module):
    """Wrap `module` so each rank trains its own share of every batch and all ranks keep the
    same weights: parameters and buffers are broadcast from rank 0 now, gradients are
    averaged across ranks after every backward pass.

    Call `dist.init_process_group("mpi")` first. Give each rank different data
    (`chainrule.data.DistributedSampler`); with the same per-rank batch b on N ranks the
    update equals one process's with batch N·b.

        model = DistributedDataParallel(net)
        for x, y in loader:                 # a DataLoader with sampler=DistributedSampler(...)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()    # .grad now averaged over the ranks
            opt.step()

    broadcast_buffers: broadcast rank 0's buffers before each synchronised forward (True).
    bucket_cap_mb:     the largest bucket after the first, in MiB (25).
    overlap:           start a bucket's all-reduce during the backward pass as soon as its
                       gradients are complete (True); False reduces them all at its end.
    device_ids, output_device, dim, find_unused_parameters, gradient_as_bucket_view,
    static_graph are accepted for PyTorch code (chainrule runs on the CPU; unused
    parameters are always handled; the averages are written into the `.grad` arrays the
    backward pass made, never views of a bucket).
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, overlap=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps an nn.Module, got "
                            f"{type(module).__name__}")
        if not dist.is_initialized():
            raise DistributedError(
                "DistributedDataParallel: the process group is not initialised; call "
                "chainrule.distributed.init_process_group('mpi') first, in every rank "
                "(start the script with mpiexec -n N python script.py)")
        if device_ids not in (None, [], ["cpu"]) or output_device not in (None, "cpu"):
            raise DistributedError("DistributedDataParallel: chainrule runs on the CPU; leave "
                                   "device_ids and output_device out")
        _check_on_host(module)
        # registered without renaming the wrapped model's parameters or layer paths
        self.__dict__["_modules"]["module"] = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        self.world_size = dist.get_world_size()
        cap = 25 * MIB if bucket_cap_mb is None else int(float(bucket_cap_mb) * MIB)
        params = [p for p in module.parameters() if p.requires_grad]
        self.reducer = _Reducer(params, cap, bool(overlap), self.world_size)
        if self.world_size > 1:
            dist._flat_broadcast(list(module.parameters()) + list(module.buffers()), 0,
                                 "DistributedDataParallel (broadcasting rank 0's weights)")

    def forward(self, *args, **kwargs):
        if self.world_size > 1 and is_grad_enabled() and self.require_backward_grad_sync:
            if self.broadcast_buffers:
                self._sync_buffers()
            self.reducer.arm()
        return self.module(*args, **kwargs)

    def _sync_buffers(self):
        """Copy rank 0's buffers (e.g. BatchNorm's running statistics) to every rank."""
        buffers = list(self.module.buffers())
        if buffers and self.world_size > 1:
            dist._flat_broadcast(buffers, 0, "DistributedDataParallel (broadcasting buffers)")

    @contextlib.contextmanager
    def no_sync(self):
        """Forward passes inside the block are not reduced after their backward: gradients
        accumulate locally, and the next synchronised backward reduces their sum."""
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    def extra_repr(self):
        return (f"world_size={self.world_size}, buckets={len(self.reducer.buckets)}, "
                f"overlap={self.reducer.overlap}")


def _check_on_host(module):
    """DDP reduces through MPI on host memory: a model on a device is refused by name."""
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        if type(t._data) is not np.ndarray:
            raise DistributedError(
                f"DistributedDataParallel: {name} is on {t.device}; data-parallel training "
                "reduces gradients through MPI on the CPU only. Keep the model on the CPU "
                "(model.cpu()) when wrapping it.")


class _Bucket:
    __slots__ = ("params", "offsets", "numel", "dtype")

    def __init__(self, dtype):
        self.params, self.offsets, self.numel, self.dtype = [], [], 0, dtype

    def add(self, p):
        self.params.append(p)
        self.offsets.append(self.numel)
        self.numel += p._data.size

    @property
    def nbytes(self):
        return self.numel * self.dtype.itemsize


def _buckets(params, cap):
    """Parameters in reverse order, cut into buckets of one dtype and at most `cap` bytes (the
    first FIRST_BUCKET_BYTES); a parameter larger than the cap gets a bucket of its own."""
    buckets = []
    for p in reversed(params):
        dtype = p._data.dtype
        limit = min(FIRST_BUCKET_BYTES, cap) if len(buckets) <= 1 else cap
        b = buckets[-1] if buckets else None
        if b is None or b.dtype != dtype or (b.params and b.nbytes + p._data.nbytes > limit):
            b = _Bucket(dtype)
            buckets.append(b)
        b.add(p)
    return buckets


class _Reducer:
    """Averages the gradients of `params` across ranks after each armed backward pass."""

    def __init__(self, params, cap, overlap, world):
        self.buckets = _buckets(params, cap)
        self.slot = {id(p): (k, j) for k, b in enumerate(self.buckets)
                     for j, p in enumerate(b.params)}
        self.overlap, self.world = overlap, world
        # one flat array per bucket, kept from step to step: MPI moves a buffer it has seen
        # before much faster than fresh memory (measured: bench/NOTES.md)
        self.flats = [np.empty(b.numel + len(b.params), dtype=b.dtype) for b in self.buckets]
        # a node watcher even without overlap: it also tells cr.compile's replay (which skips
        # the engine, and so the end-of-pass reduction) that this step must run eagerly
        self.watch = autograd.observe(self._node if overlap else _ignore_node, done=self._done)
        self.installed = False
        self.current = None     # the _Pass of the backward now being watched
        # buckets started during backward passes, started at their end, sent again (stale)
        self.counts = {"during_backward": 0, "at_end": 0, "stale": 0}

    def arm(self):
        """Reduce after the next backward pass that writes these parameters' .grad."""
        if self.current is not None:   # a pass that never ended (it raised): drop it
            self._abandon()
        if not self.installed:
            self.watch.__enter__()
            self.installed = True

    def disarm(self):
        if self.installed:
            self.watch.__exit__(None, None, None)
            self.installed = False

    # ----- during the backward pass (overlap) -----
    def _node(self, node, g, input_grads):
        cur = self.current
        if cur is None:
            cur = self.current = _Pass(self, node)
        if cur.off:
            return
        if type(g) is not np.ndarray:   # create_graph: Tensors flow; reduce at the end
            cur.off = True
            return
        slot = self.slot
        for t, gi in zip(node.inputs, input_grads):
            if gi is not None and id(t) in slot:
                cur.arrive(t, gi, slot[id(t)][0])
        cur.poll()

    # ----- when the pass has written .grad -----
    def _done(self, leaves):
        cur, self.current = self.current, None
        if not any(id(t) in self.slot for t in leaves):   # not our parameters' pass
            if cur is not None:
                cur.drain()
            return
        if cur is None:
            cur = _Pass(self, None)
        cur.finish()
        self.disarm()

    def _abandon(self):
        cur, self.current = self.current, None
        if cur is not None:
            cur.drain()


def _ignore_node(node, g, input_grads):
    pass


class _Pass:
    """One backward pass: shares summed per parameter, buckets sent when complete."""

    def __init__(self, reducer, root):
        self.r = reducer
        n = len(reducer.buckets)
        self.acc, self.count, self.pending = {}, {}, {}
        self.left = [0] * n                 # parameters per bucket still missing shares
        self.flats = [None] * n             # the packed flat arrays
        self.requests = [None] * n          # their all-reduce requests
        self.next = 0                       # the next bucket to start (in index order)
        self.stale = set()
        self.off = root is None
        if root is not None:
            self._census(root)

    def _census(self, root):
        """Count each parameter's incoming edges in the graph below `root`."""
        slot, pending = self.r.slot, self.pending
        for node in autograd.toposort([root]):
            for t in node.inputs:
                if t.requires_grad and id(t) in slot:
                    pending[id(t)] = pending.get(id(t), 0) + 1
        if not pending:     # this pass does not reach our parameters
            self.off = True
            return
        for k, b in enumerate(self.r.buckets):
            self.left[k] = sum(1 for p in b.params if pending.get(id(p), 0) > 0)
        self._start_ready()

    def arrive(self, t, gi, k):
        """Add parameter t's share gi exactly as the engine adds it to its leaf sum."""
        pid = id(t)
        n = self.count.get(pid, 0)
        if n == 0:
            self.acc[pid] = gi
        elif n == 1:
            self.acc[pid] = np.asarray(self.acc[pid] + gi)
        else:
            np.add(self.acc[pid], gi, out=self.acc[pid])
        self.count[pid] = n + 1
        if self.flats[k] is not None:      # the bucket left already: redo it at the end
            self.stale.add(k)
            return
        left = self.pending.get(pid, 0) - 1
        self.pending[pid] = left
        if left == 0:
            self.left[k] -= 1
            if self.left[k] == 0 and k == self.next:
                self._start_ready()

    def _start_ready(self):
        while self.next < len(self.flats) and self.left[self.next] == 0:
            self._start(self.next, final=False)
            self.r.counts["during_backward"] += 1
            self.next += 1

    def _start(self, k, final):
        """Pack bucket k (from the summed shares plus the gradient already in .grad, or with
        final=True from .grad as the engine wrote it) and start its all-reduce."""
        b = self.r.buckets[k]
        flat = self.r.flats[k]
        flags = flat[b.numel:]
        for j, (p, off) in enumerate(zip(b.params, b.offsets)):
            prev = p.grad._data if p.grad is not None else None
            if final:
                g = prev
            else:
                share = self.acc.get(id(p))
                g = prev if share is None else share if prev is None else prev + share
            seg = flat[off:off + p._data.size]
            if g is None:
                seg[...] = 0
                flags[j] = 0
            else:
                seg[...] = g.reshape(-1)
                flags[j] = 1
        g = dist._group
        self.flats[k] = flat
        self.requests[k] = g.comm.Iallreduce(g.MPI.IN_PLACE, flat, g.MPI.SUM)

    def poll(self):
        live = [q for q in self.requests if q is not None]
        if live:
            dist._group.MPI.Request.Testall(live)

    def drain(self):
        """Complete (and discard) what this pass started: it was not the pass to reduce."""
        live = [q for q in self.requests if q is not None]
        if live:
            dist._wait(live, "DistributedDataParallel gradient all-reduce")

    def finish(self):
        """After the engine wrote .grad: send what was not sent (or went stale), wait, and
        give every parameter its averaged gradient."""
        op = "DistributedDataParallel gradient all-reduce"
        for k in range(len(self.flats)):
            if self.requests[k] is not None and k not in self.stale:
                continue
            if self.requests[k] is not None:
                dist._wait([self.requests[k]], op)
                self.r.counts["stale"] += 1
            self._start(k, final=True)
            self.r.counts["at_end"] += 1
        dist._wait(self.requests, op)
        world = self.r.world
        for b, flat in zip(self.r.buckets, self.flats):
            grads, flags = flat[:b.numel], flat[b.numel:]
            for j, (p, off) in enumerate(zip(b.params, b.offsets)):
                if flags[j] == 0:
                    continue    # no rank had a gradient for it: .grad stays None
                avg = grads[off:off + p._data.size].reshape(p._data.shape)
                g = p.grad
                if g is None or g.requires_grad or not g._data.flags.writeable:
                    p.grad = Tensor._wrap(avg / world)
                else:           # the engine's fresh array, overwritten: no allocation
                    np.divide(avg, world, out=g._data)
                    g._version += 1
