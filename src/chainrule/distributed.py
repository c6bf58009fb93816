"""Several processes training one model: collectives over MPI (through mpi4py), with
PyTorch's `torch.distributed` names.

Start the processes with MPI's launcher and initialise once in each:

    mpiexec -n 4 python train.py                  # train.py calls init_process_group("mpi")

>>> import chainrule.distributed as dist
>>> dist.is_initialized()
False

`pip install "chainrule[distributed]"` brings mpi4py and MPICH (whose `mpiexec` lands beside
the Python executable). mpi4py is imported by `init_process_group` only: neither `import
chainrule` nor this module loads MPI. Every rank must call the same collectives in the same
order; they work in place on a tensor's array, as PyTorch's do.

Failures end the whole job instead of hanging it:
- `init_process_group` installs a `sys.excepthook` that prints an uncaught exception's
  traceback (each line prefixed with `[rank r]`) and calls MPI_Abort, which makes `mpiexec`
  stop every rank and exit non-zero; the other ranks never wait in a collective for a rank
  that has died.
- Every collective waits at most `timeout` (30 minutes by default, as PyTorch): it is started
  non-blocking (MPI_Iallreduce, ...) and polled against a deadline; past it a DistributedError
  names the operation, the rank and the world size (and, uncaught, aborts the job as above).

Each rank limits its BLAS to `blas_threads` threads (1 by default), so N ranks on N cores do
not oversubscribe them. Data-parallel training on top of these: `chainrule.nn.parallel.
DistributedDataParallel`, `chainrule.data.DistributedSampler`, `fit(..., distributed=True)`;
docs/distributed.md.
"""
import datetime
import importlib.util
import json
import os
import sys
import time
import traceback
import warnings

from . import backend as _backend
from .errors import ChainruleError, DistributedError
from .tensor import Tensor

np = _backend.np

DEFAULT_TIMEOUT = 1800.0   # seconds (PyTorch's default for its CPU backends)
# Waiting for a collective: for SPIN_S poll it in a loop that yields the core between polls
# (sched_yield: no delay on an idle core, and a busy machine's other processes, the slower rank
# among them, get to run), then sleep between polls, the pause doubling up to MAX_PAUSE_S, so
# a rank waiting long for a slower one leaves its core alone. With more ranks on a machine
# than cores, waits sleep from the start.
SPIN_S = 0.05
MAX_PAUSE_S = 0.001


class ReduceOp:
    """How `all_reduce` combines the ranks' values (PyTorch's `ReduceOp`)."""
    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"   # the sum divided by the world size; floating tensors only


class _Group:
    """The one process group: a private duplicate of MPI_COMM_WORLD and its settings."""

    def __init__(self, MPI, comm, timeout):
        self.MPI, self.comm, self.timeout = MPI, comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.previous_hook = None
        # more ranks on this machine than cores for them: a waiting rank must not spin
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = node.Get_size()
        node.Free()
        self.spin = SPIN_S if self.local_size <= _cores() else 0.0


_group = None


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def is_available():
    """Whether mpi4py can be imported (without importing it)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_initialized():
    """Whether `init_process_group` has run (and `destroy_process_group` has not since)."""
    return _group is not None


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1,
                       blas_threads=1, abort_on_exception=True):
    """Join the job that `mpiexec` started: this process's rank and the world size come from
    MPI (`world_size`/`rank`, if given, are checked against them).

    timeout:            the longest any collective waits for the other ranks (seconds or a
                        datetime.timedelta; default 30 minutes).
    blas_threads:       BLAS threads for this rank (default 1: one rank per core); None leaves
                        BLAS alone.
    abort_on_exception: install the excepthook that aborts the whole job when an exception
                        escapes on any rank (with that rank's traceback).

    Run alone (`python train.py`), it makes a group of one process.
    """
    global _group
    if _group is not None:
        raise DistributedError("init_process_group: the process group is already initialised "
                               "(call destroy_process_group() first to start another)")
    if backend not in (None, "mpi"):
        raise DistributedError(f"init_process_group: backend {backend!r} is not available; "
                               "chainrule's backend is 'mpi' (mpi4py), started by mpiexec")
    if init_method not in (None, "env://", "mpi://"):
        raise DistributedError(f"init_process_group: init_method {init_method!r} is not used "
                               "with MPI: mpiexec tells each process its rank and the world "
                               "size; leave it out")
    seconds = _seconds(timeout)
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            "init_process_group('mpi') needs mpi4py and an MPI runtime: pip install "
            "'chainrule[distributed]' (mpi4py + mpich), then start the script with mpiexec -n "
            f"N python script.py ({exc})") from exc
    group = _Group(MPI, MPI.COMM_WORLD.Dup(), seconds)
    for name, given, actual in (("world_size", world_size, group.size),
                                ("rank", rank, group.rank)):
        if given is not None and given >= 0 and given != actual:
            group.comm.Free()
            raise DistributedError(f"init_process_group: {name}={given} was asked for but MPI "
                                   f"says {actual}; start the job with mpiexec -n <world size>")
    _group = group
    if abort_on_exception and group.size > 1:
        group.previous_hook, sys.excepthook = sys.excepthook, _abort_hook
    if blas_threads is not None:
        try:
            _backend.set_num_threads(blas_threads)
        except ChainruleError as exc:   # no threadpoolctl: BLAS keeps its own default
            warnings.warn(f"init_process_group could not limit BLAS threads: {exc}",
                          RuntimeWarning, stacklevel=2)


def destroy_process_group(group=None):
    """Leave the process group (MPI itself stays initialised until the program exits)."""
    global _group
    g = _group
    if g is None:
        return
    if sys.excepthook is _abort_hook:
        sys.excepthook = g.previous_hook or sys.__excepthook__
    _group = None
    g.comm.Free()


def _seconds(timeout):
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise DistributedError(f"init_process_group: timeout must be a positive number of "
                               f"seconds or a timedelta, got {timeout!r}")
    return float(timeout)


def _require(op):
    if _group is None:
        raise DistributedError(f"{op}: the process group is not initialised; call "
                               "chainrule.distributed.init_process_group('mpi') first (and "
                               "start the script with mpiexec -n N python script.py)")
    return _group


def get_rank(group=None):
    """This process's rank, 0 .. world size - 1."""
    return _require("get_rank").rank


def get_world_size(group=None):
    """How many processes the job has."""
    return _require("get_world_size").size


def get_backend(group=None):
    _require("get_backend")
    return "mpi"


def set_timeout(seconds):
    """Change the collectives' timeout (seconds or a timedelta) after initialisation."""
    _require("set_timeout").timeout = _seconds(seconds)


# ----- failure handling -----
def _abort_hook(exc_type, exc, tb):
    """sys.excepthook while a group of several ranks is up: show this rank's traceback, then
    MPI_Abort, so mpiexec ends every rank (none is left waiting in a collective)."""
    g = _group
    if g is None or g.size == 1:
        (sys.__excepthook__)(exc_type, exc, tb)
        return
    try:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        prefix = f"[rank {g.rank}] "
        sys.stderr.write(f"chainrule.distributed: rank {g.rank} of {g.size} raised an "
                         "exception; aborting the job\n" +
                         "".join(prefix + line + "\n" for line in text.rstrip("\n").split("\n")))
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        g.comm.Abort(1)


def abort(code=1, message=None):
    """End every rank of the job now (MPI_Abort), after printing `message` on this one."""
    g = _require("abort")
    if message:
        sys.stderr.write(f"[rank {g.rank}] {message}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    g.comm.Abort(code)


# ----- waiting with a deadline -----
class Work:
    """A collective under way (`async_op=True`); `wait()` finishes it (PyTorch's Work)."""

    def __init__(self, requests, op, after=None):
        self.requests, self.op, self.after = requests, op, after
        self.done = False

    def is_completed(self):
        if not self.done and _group.MPI.Request.Testall(self.requests):
            self._finish()
        return self.done

    def wait(self, timeout=None):
        if not self.done:
            _wait(self.requests, self.op, timeout)
            self._finish()
        return None

    def _finish(self):
        self.done = True
        if self.after is not None:
            after, self.after = self.after, None
            after()


def _wait(requests, op, timeout=None):
    """Complete MPI requests, polling until the group's timeout; a DistributedError past it."""
    g = _group
    testall = g.MPI.Request.Testall
    if testall(requests):
        return
    clock, yield_core = time.monotonic, getattr(os, "sched_yield", _no_yield)
    start = clock()
    limit = g.timeout if timeout is None else _seconds(timeout)
    spin_until, pause = start + g.spin, 0.0
    while not testall(requests):
        now = clock()
        if now < spin_until and now - start <= limit:
            yield_core()
            continue
        if now - start > limit:
            raise DistributedError(
                f"{op} timed out on rank {g.rank} of {g.size} after {limit:g} s waiting for the "
                "other ranks: one of them is stuck, has died, is much slower than the timeout "
                "allows, or called the collectives in a different order. Raise the limit with "
                "init_process_group(timeout=...) or set_timeout(...).")
        time.sleep(pause)
        pause = min(max(2 * pause, 2e-5), MAX_PAUSE_S)


def _no_yield():
    pass


# ----- collectives on tensors -----
_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD",
            ReduceOp.MIN: "MIN", ReduceOp.MAX: "MAX"}


def _array(tensor, op):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a chainrule Tensor, got {type(tensor).__name__}")
    return tensor._data


def _buffer(arr):
    """A contiguous, writable array to hand to MPI: `arr` itself when it already is one."""
    if arr.flags.c_contiguous and arr.flags.writeable:
        return arr
    return arr.copy(order="C")


def _finisher(tensor, arr, buf, extra=None):
    def after():
        if extra is not None:
            extra(buf)
        if buf is not arr:
            if arr.flags.writeable:
                arr[...] = buf
            else:
                tensor._data = buf
        tensor._version += 1
    return after


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine `tensor` across all ranks, in place: afterwards every rank holds the sum (or
    product, min, max, average) of the ranks' values. Returns a Work with async_op=True."""
    g = _require("all_reduce")
    arr = _array(tensor, "all_reduce")
    if op not in _MPI_OPS:
        raise DistributedError(f"all_reduce: op {op!r} is not one of ReduceOp.SUM, PRODUCT, "
                               "MIN, MAX, AVG")
    extra = None
    if op == ReduceOp.AVG:
        if arr.dtype.kind != "f":
            raise DistributedError(f"all_reduce: ReduceOp.AVG needs a floating tensor, got "
                                   f"{arr.dtype}; use SUM and divide")
        extra = _divider(g.size)
    buf = _buffer(arr)
    request = g.comm.Iallreduce(g.MPI.IN_PLACE, buf, getattr(g.MPI, _MPI_OPS[op]))
    return _run(Work([request], "all_reduce", _finisher(tensor, arr, buf, extra)), async_op)


def _divider(n):
    def divide(buf):
        np.divide(buf, n, out=buf)
    return divide


def _run(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into every rank's `tensor`, in place."""
    g = _require("broadcast")
    _check_rank(src, g, "broadcast")
    arr = _array(tensor, "broadcast")
    buf = _buffer(arr)
    request = g.comm.Ibcast(buf, root=src)
    return _run(Work([request], "broadcast", _finisher(tensor, arr, buf)), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill `tensor_list` (world size tensors shaped like `tensor`) with every rank's
    `tensor`, in rank order."""
    g = _require("all_gather")
    arr = _array(tensor, "all_gather")
    if len(tensor_list) != g.size:
        raise DistributedError(f"all_gather: tensor_list has {len(tensor_list)} tensors; it "
                               f"needs one per rank ({g.size})")
    for i, t in enumerate(tensor_list):
        a = _array(t, "all_gather")
        if a.shape != arr.shape or a.dtype != arr.dtype:
            raise DistributedError(f"all_gather: tensor_list[{i}] is {a.dtype}{list(a.shape)} "
                                   f"but the tensor sent is {arr.dtype}{list(arr.shape)}")
    send = np.ascontiguousarray(arr)
    recv = np.empty((g.size,) + arr.shape, dtype=arr.dtype)
    request = g.comm.Iallgather(send, recv)

    def after():
        for t, row in zip(tensor_list, recv):
            t._data[...] = row
            t._version += 1
    return _run(Work([request], "all_gather", after), async_op)


def barrier(group=None, async_op=False):
    """Wait until every rank has reached this call."""
    g = _require("barrier")
    return _run(Work([g.comm.Ibarrier()], "barrier"), async_op)


def _check_rank(r, g, op):
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < g.size:
        raise DistributedError(f"{op}: rank {r!r} is not in 0..{g.size - 1}")


# ----- collectives on Python objects (small things: seeds, states, metrics) -----
# Objects travel as data, never as pickles (like checkpoints, receiving one cannot run code):
# None, bool, int, float, str, lists, tuples and dicts of them, with NumPy arrays, NumPy
# scalars and Tensors inside. A JSON tree with tagged containers, then the arrays' bytes.
def _dumps(obj, op):
    arrays = []

    def enc(o):
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        if isinstance(o, (np.ndarray, np.generic, Tensor)):
            a = o._data if isinstance(o, Tensor) else np.asarray(o)
            if a.dtype.hasobject:
                raise DistributedError(f"{op}: cannot send an array of Python objects")
            arrays.append(a if a.flags.c_contiguous else a.copy(order="C"))
            tag = "$T" if isinstance(o, Tensor) else "$g" if isinstance(o, np.generic) else "$a"
            return {tag: len(arrays) - 1}
        if isinstance(o, list):
            return [enc(x) for x in o]
        if isinstance(o, tuple):
            return {"$t": [enc(x) for x in o]}
        if isinstance(o, dict):
            return {"$d": [[enc(k), enc(v)] for k, v in o.items()]}
        raise DistributedError(
            f"{op}: cannot send a {type(o).__name__}; objects travel as data (None, bool, int, "
            "float, str, list, tuple, dict, with NumPy arrays and Tensors inside), not pickles")

    header = json.dumps({"tree": enc(obj), "arrays": [[a.dtype.str, a.shape] for a in arrays]},
                        separators=(",", ":")).encode()
    blob = b"".join([len(header).to_bytes(8, "little"), header] + [a.tobytes() for a in arrays])
    return np.frombuffer(blob, dtype=np.uint8)


def _loads(buf):
    blob = buf.tobytes()
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n].decode())
    arrays, offset = [], 8 + n
    for dtype, shape in head["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        arrays.append(np.frombuffer(blob, dtype=dt, count=count, offset=offset)
                      .reshape(shape).copy())
        offset += count * dt.itemsize

    def dec(o):
        if isinstance(o, list):
            return [dec(x) for x in o]
        if isinstance(o, dict):
            (tag, v), = o.items()
            if tag == "$t":
                return tuple(dec(x) for x in v)
            if tag == "$d":
                return {dec(k): dec(x) for k, x in v}
            a = arrays[v]
            return Tensor._wrap(a) if tag == "$T" else a[()] if tag == "$g" else a
        return o
    return dec(head["tree"])


def all_gather_object(object_list, obj, group=None):
    """Fill `object_list` (one slot per rank) with every rank's `obj`, in rank order (plain
    values, lists, tuples, dicts, NumPy arrays and Tensors; not arbitrary objects)."""
    g = _require("all_gather_object")
    if len(object_list) != g.size:
        raise DistributedError(f"all_gather_object: object_list has {len(object_list)} slots; "
                               f"it needs one per rank ({g.size})")
    data = _dumps(obj, "all_gather_object")
    mine, sizes = np.array([data.size], dtype=np.int64), np.zeros(g.size, dtype=np.int64)
    _wait([g.comm.Iallgather(mine, sizes)], "all_gather_object")
    recv = np.empty(int(sizes.sum()), dtype=np.uint8)
    _wait([g.comm.Iallgatherv(data, [recv, sizes.tolist()])], "all_gather_object")
    ends = np.cumsum(sizes)
    for i in range(g.size):
        object_list[i] = _loads(recv[ends[i] - sizes[i]:ends[i]])


def broadcast_object_list(object_list, src=0, group=None):
    """Replace the items of `object_list` on every rank by those of rank `src`'s list (the
    values that all_gather_object sends)."""
    g = _require("broadcast_object_list")
    _check_rank(src, g, "broadcast_object_list")
    payload = _dumps(list(object_list), "broadcast_object_list") if g.rank == src else None
    size = np.array([payload.size if payload is not None else 0], dtype=np.int64)
    _wait([g.comm.Ibcast(size, root=src)], "broadcast_object_list")
    buf = payload.copy() if payload is not None else np.empty(int(size[0]), dtype=np.uint8)
    _wait([g.comm.Ibcast(buf, root=src)], "broadcast_object_list")
    if g.rank != src:
        object_list[:] = _loads(buf)


def broadcast_object(obj=None, src=0):
    """`obj` as rank `src` has it, on every rank (a one-item broadcast_object_list)."""
    box = [obj]
    broadcast_object_list(box, src)
    return box[0]


# ----- flat buffers (used by DistributedDataParallel) -----
def _flat_broadcast(tensors, src, op):
    """Broadcast many tensors from `src` with one call per dtype (packed into a flat array)."""
    g = _require(op)
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault(t._data.dtype, []).append(t)
    for dtype, group in by_dtype.items():
        flat = np.empty(sum(t._data.size for t in group), dtype=dtype)
        if g.rank == src:
            _pack(flat, [t._data for t in group])
        _wait([g.comm.Ibcast(flat, root=src)], op)
        if g.rank != src:
            offset = 0
            for t in group:
                n = t._data.size
                if not t._data.flags.writeable:
                    t._data = t._data.copy()
                t._data[...] = flat[offset:offset + n].reshape(t._data.shape)
                t._version += 1
                offset += n


def _pack(flat, arrays):
    offset = 0
    for a in arrays:
        n = a.size
        flat[offset:offset + n] = a.reshape(-1)
        offset += n
