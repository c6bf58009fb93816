"""Grad mode: whether operations record the graph now (`no_grad`, `enable_grad`,
`set_grad_enabled`), read by every op as it runs.

The mode is per thread, as in PyTorch: `no_grad()` (and the backward pass, which runs its rules
with the mode create_graph asks for) in one thread never changes what another thread records.
It is kept in a `contextvars.ContextVar`, which is per thread (a new thread starts with grad
enabled) and, beyond PyTorch's thread-local, per asyncio task. Measured (bench/NOTES.md §11):
`grad_enabled()` costs 7-15 ns more per recorded op than the old process-wide attribute read;
a `threading.local` attribute 50-100 ns more.
"""
import contextvars
from threading import get_ident

_enabled = contextvars.ContextVar("chainrule_grad_enabled", default=True)

# The hot path: `grad_enabled()` is the calling thread's mode (one C call, no Python frame).
grad_enabled = _enabled.get
_set_enabled = _enabled.set


class _GradMode:
    """`grad_mode.enabled`: the calling thread's mode, read and set (kept for code that reads
    it as an attribute; ops call `grad_enabled()`)."""
    __slots__ = ()

    @property
    def enabled(self):
        return _enabled.get()

    @enabled.setter
    def enabled(self, mode):
        _enabled.set(bool(mode))


grad_mode = _GradMode()


def is_grad_enabled():
    """Whether operations record the graph now (False inside `no_grad`).

    >>> import chainrule as cr
    >>> with cr.no_grad():
    ...     inside = cr.is_grad_enabled()
    >>> cr.is_grad_enabled(), inside
    (True, False)
    """
    return _enabled.get()


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off.

    >>> import chainrule as cr
    >>> w = cr.tensor(1.0, requires_grad=True)
    >>> with cr.set_grad_enabled(False):
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.prev = {}   # thread id -> the modes to restore: one object may serve two threads

    def __enter__(self):
        self.prev.setdefault(get_ident(), []).append(_enabled.get())
        _enabled.set(self.mode)
        return self

    def __exit__(self, *exc):
        stack = self.prev[get_ident()]
        _enabled.set(stack.pop())
        if not stack:
            del self.prev[get_ident()]
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class no_grad(set_grad_enabled):
    """Record no graph inside the block: for evaluation and parameter updates.

    >>> import chainrule as cr
    >>> w = cr.tensor(1.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __new__(cls, fn=None):
        if fn is not None:          # bare @cr.no_grad, as PyTorch allows
            return set_grad_enabled(False)(fn)
        return super().__new__(cls)

    def __init__(self, fn=None):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record the graph inside the block, even within `no_grad`.

    >>> import chainrule as cr
    >>> w = cr.tensor(1.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     with cr.enable_grad():
    ...         y = w * 2
    >>> y.requires_grad
    True
    """

    def __new__(cls, fn=None):
        if fn is not None:          # bare @cr.enable_grad
            return set_grad_enabled(True)(fn)
        return super().__new__(cls)

    def __init__(self, fn=None):
        super().__init__(True)
