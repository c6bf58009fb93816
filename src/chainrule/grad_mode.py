"""Grad mode: whether operations record the graph now (`no_grad`, `enable_grad`,
`set_grad_enabled`). One process-wide switch, read by every op as it runs."""


class _GradMode:
    __slots__ = ("enabled",)

    def __init__(self):
        self.enabled = True


grad_mode = _GradMode()


def is_grad_enabled():
    """Whether operations record the graph now (False inside `no_grad`).

    >>> import chainrule as cr
    >>> with cr.no_grad():
    ...     inside = cr.is_grad_enabled()
    >>> cr.is_grad_enabled(), inside
    (True, False)
    """
    return grad_mode.enabled


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
        self.prev = []

    def __enter__(self):
        self.prev.append(grad_mode.enabled)
        grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        grad_mode.enabled = self.prev.pop()
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
