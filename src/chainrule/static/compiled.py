"""`cr.compile`: the compiled function object (calls, variants, guards, check mode)."""
import functools
import threading
import warnings
import weakref

from .. import autograd, backend
from ..errors import ChainruleError, CompileError
from ..ops import registry
from ..tensor import Tensor
from . import capture as C
from . import taint
from .program import MISS, Program

np = backend.np

MAX_VARIANTS = 8
taint.TRUSTED.update(C.trusted_code())
_capture_lock = threading.RLock()      # one capture at a time: the wrappers are process-wide


class CompileWarning(UserWarning):
    """A compiled function runs eagerly from now on (it cannot be captured, or its guards
    keep failing); the message says why."""


def compile(fn=None, *, check=0, fallback=False, max_variants=MAX_VARIANTS):
    """A version of `fn` that captures a whole call once (forward, backward, optimizer step)
    as a static graph and replays it on later calls.

    The first call runs eagerly (optimizer moments and other lazy state get created), the
    second runs eagerly while capturing, later calls replay the captured program: no Tensor,
    no graph node, no dispatch per operation; the same primitives' forwards and first-order
    VJP rules run on the new arrays, `.grad` is written, optimizer and scheduler methods are
    called again. Guards (input shapes, dtypes, requires_grad, train/eval mode, grad mode,
    the parameters' identity and shape) are checked on every call; when one fails the call is
    captured again (up to `max_variants` variants), then runs eagerly with one warning.

    check=K runs the first K replays side by side with an eager run (on the same state, put
    back in between) and raises CompileError on any difference beyond rounding.
    fallback=True runs a function that reads tensor values (`.item()`, `if x > 0`) eagerly
    instead of raising CompileError.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> cr.manual_seed(0)
    >>> model = nn.Linear(3, 1)
    >>> opt = cr.optim.SGD(model.parameters(), lr=0.1)
    >>> def step(x, y):
    ...     opt.zero_grad()
    ...     loss = ((model(x) - y) ** 2).mean()
    ...     loss.backward()
    ...     opt.step()
    ...     return loss
    >>> fast = cr.compile(step)
    >>> x, y = cr.ones(4, 3), cr.zeros(4, 1)
    >>> losses = [round(fast(x, y).item(), 4) for _ in range(4)]   # eager, capture, replay x2
    >>> fast.stats["replays"], losses[0] > losses[-1]
    (2, True)
    """
    if fn is None:
        return functools.partial(compile, check=check, fallback=fallback,
                                 max_variants=max_variants)
    return CompiledFunction(fn, check=check, fallback=fallback, max_variants=max_variants)


class CompiledFunction:
    """The object `cr.compile(fn)` returns: call it like `fn`.

    >>> import chainrule as cr
    >>> f = cr.compile(lambda x: (x * 2).sum())
    >>> [f(cr.ones(3)).item() for _ in range(3)]
    [6.0, 6.0, 6.0]
    >>> print(f.graph().splitlines()[0])
    static graph of <lambda>: 2 operations, 0 backward steps, 0 host calls (variant 1 of 1)
    """

    def __init__(self, fn, check=0, fallback=False, max_variants=MAX_VARIANTS):
        self.fn = fn
        self.check = int(check)
        self.fallback = bool(fallback)
        self.max_variants = int(max_variants)
        self.variants = []
        self.eager_reason = None        # set: every call runs eagerly (said once)
        self.full_warned = False
        self.calls = 0
        self.stats = {"eager": 0, "captures": 0, "replays": 0, "checked": 0}
        self.capture_seconds = []
        self._scouted = weakref.WeakValueDictionary()
        self._lock = threading.RLock()
        functools.update_wrapper(self, fn)

    @property
    def name(self):
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    # ----- calling -----
    def __call__(self, *args, **kwargs):
        # the hot path: the most recent variant, unwatched, no check runs left
        variants = self.variants
        if variants and self.eager_reason is None and not _NODE_HOOKS and not _OBSERVERS \
                and not _thread_observers() and self.stats["checked"] >= self.check:
            self.calls += 1
            try:
                with self._lock:    # one replay at a time: buffers such as a loss's saved
                    out = variants[0].run(args, kwargs)    # softmax belong to the program
            except (ValueError, IndexError, TypeError) as exc:
                if isinstance(exc, ChainruleError):
                    raise
                raise _explain(variants[0], exc) from exc
            if out is not MISS:
                self.stats["replays"] += 1
                return out
            self.calls -= 1
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        self.calls += 1
        if self.eager_reason is not None or _watched():
            self.stats["eager"] += 1     # anomaly mode or a backward watcher sees the eager path
            return self.fn(*args, **kwargs)
        for i, variant in enumerate(self.variants):
            if variant.run is None:
                continue
            if self.stats["checked"] < self.check:
                if variant.why(args, kwargs) is None:
                    return self._checked(variant, args, kwargs)
                continue
            try:
                with self._lock:    # one replay at a time: buffers such as a loss's saved
                    out = variant.run(args, kwargs)    # softmax belong to the program
            except (ValueError, IndexError, TypeError) as exc:
                if isinstance(exc, ChainruleError):
                    raise
                raise _explain(variant, exc) from exc
            if out is not MISS:
                self.stats["replays"] += 1
                if i:
                    self.variants.insert(0, self.variants.pop(i))
                return out
        if self.calls == 1:
            return self._scout(args, kwargs)
        if len(self.variants) >= self.max_variants:
            if not self.full_warned:
                self.full_warned = True
                why = self.variants[0].why(args, kwargs) if self.variants else "no variant"
                warnings.warn(
                    f"cr.compile({self.name}): {len(self.variants)} captured variants and "
                    f"none fits this call (the most recent needs: {why}); calls that fit none "
                    "run eagerly from now on. Keep shapes, modes and parameters steady, or "
                    "raise max_variants.", CompileWarning, stacklevel=2)
            self.stats["eager"] += 1
            return self.fn(*args, **kwargs)
        return self._capture(args, kwargs)

    def _scout(self, args, kwargs):
        """Call 1: eager, noting which tensors from outside the call the function reads (the
        state to trace when it is captured)."""
        seen, made, me = {}, set(), threading.get_ident()

        def note(kind, fn, inputs, params, result):
            if threading.get_ident() != me:
                return
            for t in inputs:
                if isinstance(t, Tensor) and id(t) not in made:
                    seen[id(t)] = t
            made.add(id(result))

        registry.op_hooks.append(note)
        try:
            out = self.fn(*args, **kwargs)
        finally:
            registry.op_hooks.remove(note)
        for k, t in seen.items():
            data = t._data
            if isinstance(data, np.ndarray) and (data.flags.writeable or t.requires_grad):
                self._scouted[k] = t      # read-only ones are constants (x * 0.5's 0.5)
        self.stats["eager"] += 1
        return out

    def _capture(self, args, kwargs):
        import time
        t0 = time.perf_counter()
        with _capture_lock:
            session = C.Session(self.fallback, list(self._scouted.values()))
            patches = C.Patches()
            prev = taint.current()
            new_args, new_kwargs = session.begin(args, kwargs)
            patches.install(session)
            taint.set_current(session)
            try:
                result = self.fn(*new_args, **new_kwargs)
                if not session.failed:
                    try:
                        session.sync()
                        session.check_rng("end")
                        out = session.output(result)
                    except C.NotCapturable:
                        pass
            finally:
                taint.set_current(prev)
                patches.remove(session)
                session.restore()
            C.untrace_result(result)
            self.stats["captures"] += 1
            if session.failed:
                self._give_up(session.failed)
                return result
            try:
                program = Program(session, out, f"{self.name} v{len(self.variants) + 1}")
            except Exception as exc:      # never let the compiler break a working function
                self._give_up(f"the captured program could not be built ({exc!r}); please "
                              "report it")
                return result
            for t in list(program.state.values()):
                self._scouted[id(t[0])] = t[0]
            self.variants.insert(0, program)
            program.captured_on = self.calls
            self.capture_seconds.append(time.perf_counter() - t0)
        return result

    def _give_up(self, why):
        self.eager_reason = why
        warnings.warn(f"cr.compile({self.name}) runs eagerly: {why}.", CompileWarning,
                      stacklevel=3)

    # ----- check mode -----
    def _checked(self, variant, args, kwargs):
        """Run eagerly, put the state back, replay, compare."""
        self.stats["checked"] += 1
        snap = _Snapshot(variant)
        eager_out = self.fn(*args, **kwargs)
        eager = snap.values(eager_out)
        snap.restore()
        out = variant.run(args, kwargs)
        if out is MISS:
            raise CompileError(f"cr.compile({self.name}, check=...): the variant's guards "
                               "changed between the eager and the compiled run")
        self.stats["replays"] += 1
        compiled = snap.values(out)
        _compare(self.name, self.stats["checked"], eager, compiled)
        return out

    # ----- looking at it -----
    def graph(self, variant=0):
        """The captured program as text: buffers (inputs, parameters and state, constants)
        and instructions (forward operations, the backward schedule, optimizer calls)."""
        if not self.variants:
            return (f"static graph of {self.name}: nothing captured yet (call {self.calls} of "
                    "it so far: call 1 runs eagerly, call 2 captures)" +
                    (f"; running eagerly: {self.eager_reason}" if self.eager_reason else ""))
        from .render import render_program
        return render_program(self.variants[variant], variant + 1, len(self.variants))

    def source(self, variant=0):
        """The Python the replay of a variant runs (generated from the captured program)."""
        return self.variants[variant].source

    def reset(self):
        """Forget every captured variant: the next call captures again."""
        self.variants = []
        self.eager_reason = None
        self.full_warned = False
        self.calls = 1

    def __repr__(self):
        return (f"<cr.compile({self.name}): {len(self.variants)} variant(s), "
                f"{self.stats['replays']} replays, {self.stats['eager']} eager calls>")

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


_NODE_HOOKS = registry.node_hooks                    # detect_anomaly's
_OBSERVERS = autograd._observers                      # process-wide backward watchers
_thread_observers = getattr(autograd, "_thread_observers", lambda: ())   # this thread's


def _watched():
    """True while anomaly detection or an `autograd.observe` block watches the engine."""
    return bool(_NODE_HOOKS or _OBSERVERS or _thread_observers())


def _explain(variant, exc):
    """A primitive's failure during a replay, worded as the eager call words it."""
    tb = exc.__traceback__
    frame = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<cr.compile"):
            frame, line = tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next
    if frame is None:
        return exc
    src = variant.source.splitlines()[line - 1].strip()
    return CompileError(f"cr.compile: replaying `{src}` failed: {exc}") \
        if not isinstance(exc, CompileError) else exc


# ----- check mode: state snapshots -----
class _Snapshot:
    def __init__(self, variant):
        self.tensors = [t for t, *_ in variant.state.values()]
        self.saved = [(t, t._data, t._data.copy(), t.grad, None if t.grad is None else
                       t.grad._data.copy(), t._version) for t in self.tensors]
        self.hosts = []
        seen = set()
        for ins in variant.instrs:
            if isinstance(ins, C.Host):
                for a in ins.args:
                    obj = a[1] if a[0] == "obj" else None
                    if obj is not None and id(obj) not in seen and hasattr(obj, "__dict__") \
                            and not isinstance(obj, Tensor):
                        seen.add(id(obj))
                        self.hosts.append((obj, _deep(obj.__dict__)))
        self.rng = backend.get_rng_state()

    def restore(self):
        for t, data, values, grad, gvalues, version in self.saved:
            t._data = data
            np.copyto(data, values)
            if grad is not None:
                np.copyto(grad._data, gvalues)
            t.grad = grad
            t._version = version
        for obj, state in self.hosts:
            obj.__dict__.clear()
            obj.__dict__.update(_deep(state))
        backend.set_rng_state(self.rng)

    def values(self, out):
        vals = {"result": _arrays(out)}
        for i, t in enumerate(self.tensors):
            vals[f"{t.name or 'state ' + str(i)}"] = t._data.copy()
            if t.grad is not None:
                vals[f"{t.name or 'state ' + str(i)}.grad"] = t.grad._data.copy()
        for obj, _ in self.hosts:
            state = getattr(obj, "state", None)
            if isinstance(state, dict):
                for k, per in state.items():
                    if isinstance(per, dict):
                        for name, v in per.items():
                            if backend.is_array(v):
                                vals[f"{type(obj).__name__} state {name}"
                                     f" #{k % 10007}"] = v.copy()
        return vals


def _deep(d):
    import copy
    out = {}
    for k, v in d.items():
        if k in ("param_groups",):
            out[k] = [{kk: (vv if kk == "params" else copy.deepcopy(vv)) for kk, vv in g.items()}
                      for g in v]
        elif k == "optimizer" or isinstance(v, Tensor):
            out[k] = v
        else:
            try:
                out[k] = copy.deepcopy(v)
            except Exception:
                out[k] = v
    return out


def _arrays(out):
    if isinstance(out, Tensor):
        return [out._data.copy()]
    if isinstance(out, (list, tuple)):
        return [a for v in out for a in _arrays(v)]
    if isinstance(out, dict):
        return [a for v in out.values() for a in _arrays(v)]
    return []


def _compare(name, call, eager, compiled):
    for key, e in eager.items():
        c = compiled.get(key)
        if key == "result":
            pairs = list(zip(e, c or []))
            if len(e) != len(c or []):
                raise CompileError(f"cr.compile({name}, check): call {call} returned "
                                   f"{len(c or [])} tensors compiled, {len(e)} eagerly")
        else:
            pairs = [(e, c)]
        for a, b in pairs:
            if b is None or a.shape != b.shape:
                raise CompileError(f"cr.compile({name}, check): call {call}: {key} differs in "
                                   "shape between the eager and the compiled run")
            if a.dtype.kind != "f":
                ok = np.array_equal(a, b)
                err = 0.0 if ok else float("inf")
            else:
                tol = 1e-12 if a.dtype == np.float64 else 1e-6
                scale = np.maximum(np.abs(a), 1.0)
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                both_nan = np.isnan(a) & np.isnan(b)
                ok = bool(np.all((diff <= tol * scale) | both_nan))
                err = float(np.nanmax(diff)) if diff.size else 0.0
            if not ok:
                raise CompileError(
                    f"cr.compile({name}, check): call {call}: {key} differs between the eager "
                    f"and the compiled run (max abs difference {err:.3g}); the captured program "
                    "does not reproduce the function. Use it uncompiled (or fallback=True) and "
                    "report the case.")
