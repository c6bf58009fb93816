"""Learning-rate schedules, stepped once per epoch (or per batch) after `optimizer.step()`.

Each schedule follows PyTorch's chainable rule: `_next_lr` turns the group's current lr into
the next one, so several schedules can act on one optimizer, and `SequentialLR` hands over
from one to the next at milestones (jumping the new one to its start with `_lr_at`).
Every schedule's state (a handful of numbers) round-trips through `state_dict`.
"""
import math
from bisect import bisect_right

from ..errors import CheckpointError, OptimizerError
from .optimizer import Optimizer


class LRScheduler:
    """Base class: remembers each group's initial lr (`base_lrs`) and the epoch count.
    Constructing a schedule applies its value for epoch 0.

    A schedule defines `_next_lr(lr, base)`, the lr after one more epoch:

    >>> import chainrule as cr
    >>> class Halve(cr.optim.lr_scheduler.LRScheduler):
    ...     def _next_lr(self, lr, base):
    ...         return base if self.last_epoch == 0 else lr / 2
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = Halve(opt)
    >>> sched.step()
    >>> sched.step()
    >>> sched.get_last_lr(), opt.param_groups[0]["lr"]
    ([0.25], 0.25)
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise OptimizerError(f"{type(self).__name__}: expected a chainrule optimizer, got "
                                 f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self._initial = True
        self.step()
        self._initial = False

    def step(self):
        """Advance one epoch and set every group's lr."""
        self.last_epoch += 1
        self._set([self._next_lr(g["lr"], base) for g, base in self._groups()])

    def _jump(self, epoch):
        """Set the lr of `epoch` directly (used by SequentialLR at a milestone)."""
        self.last_epoch = epoch
        self._set([self._lr_at(base) for _, base in self._groups()])

    def _groups(self):
        return zip(self.optimizer.param_groups, self.base_lrs)

    def _set(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self):
        """The lr of each group as last set by this schedule."""
        return list(self._last_lr)

    def _next_lr(self, lr, base):
        raise NotImplementedError

    def _lr_at(self, base):
        raise NotImplementedError(f"{type(self).__name__} has no closed form")

    def state_dict(self):
        """Every attribute but the optimizer (plain numbers and lists)."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state):
        missing = [k for k in self.state_dict() if k not in state]
        if missing:
            raise CheckpointError(f"{type(self).__name__}.load_state_dict: missing {missing}; "
                                  "was this state saved by a different scheduler?")
        for key, value in state.items():
            setattr(self, key, list(value) if isinstance(value, tuple) else value)

    def __repr__(self):
        return f"{type(self).__name__}(epoch={self.last_epoch}, lr={self.get_last_lr()})"


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size).

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    >>> lrs = []
    >>> for _ in range(4): s.step(); lrs.append(round(opt.param_groups[0]['lr'], 6))
    >>> lrs
    [1.0, 0.1, 0.1, 0.01]
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer)

    def _next_lr(self, lr, base):
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return lr
        return lr * self.gamma

    def _lr_at(self, base):
        return base * self.gamma ** (self.last_epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = base * gamma ** epoch.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5); s.step(); s.step()
    >>> s.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, gamma):
        self.gamma = gamma
        super().__init__(optimizer)

    def _next_lr(self, lr, base):
        return lr if self._initial else lr * self.gamma

    def _lr_at(self, base):
        return base * self.gamma ** self.last_epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2 (PyTorch's recursive
    form, which keeps going as a cosine wave past T_max).

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    >>> for _ in range(2): s.step()
    >>> round(s.get_last_lr()[0], 6)     # halfway down
    0.5
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max, self.eta_min = int(T_max), eta_min
        super().__init__(optimizer)

    def _next_lr(self, lr, base):
        e, T, lo = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return lr
        if (e - 1 - T) % (2 * T) == 0:
            return lr + (base - lo) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - lo) + lo

    def _lr_at(self, base):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch
                                                                    / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up: the factor on the base lr goes from `start_factor` to `end_factor` over
    `total_iters` steps, then stays.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> lrs = [s.get_last_lr()[0]]
    >>> for _ in range(4): s.step(); lrs.append(round(s.get_last_lr()[0], 6))
    >>> lrs
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        if not (0 < start_factor <= 1 and 0 <= end_factor <= 1):
            raise OptimizerError(f"LinearLR: start_factor must be in (0, 1] and end_factor in "
                                 f"[0, 1]; got {start_factor}, {end_factor}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def _next_lr(self, lr, base):
        e, a, b, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        if e == 0:
            return lr * a
        if e > n:
            return lr
        return lr * (1.0 + (b - a) / (n * a + (e - 1) * (b - a)))

    def _lr_at(self, base):
        e, a, b, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        return base * (a + (b - a) * min(n, e) / n)


class SequentialLR(LRScheduler):
    """Run `schedulers` one after another, switching at the epochs in `milestones`
    (e.g. LinearLR warm-up for 5 epochs, then CosineAnnealingLR).

    >>> import chainrule as cr
    >>> from chainrule.optim import lr_scheduler as S
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = S.SequentialLR(opt, [S.LinearLR(opt, 0.5, total_iters=2),
    ...                          S.StepLR(opt, step_size=1, gamma=0.5)], milestones=[2])
    >>> lrs = [s.get_last_lr()[0]]
    >>> for _ in range(4): s.step(); lrs.append(s.get_last_lr()[0])
    >>> lrs
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer, schedulers, milestones):
        schedulers, milestones = list(schedulers), list(milestones)
        if len(milestones) != len(schedulers) - 1 or not schedulers:
            raise OptimizerError(f"SequentialLR: needs one milestone fewer than schedulers; got "
                                 f"{len(schedulers)} schedulers, {len(milestones)} milestones")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise OptimizerError("SequentialLR: every scheduler must drive the same optimizer")
        self.optimizer, self.schedulers, self.milestones = optimizer, schedulers, milestones
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        for group, base in zip(optimizer.param_groups, self.base_lrs):
            group["lr"] = base  # undo what constructing the parts applied
        for s in schedulers:
            s.last_epoch -= 1
        self.last_epoch = 0
        first = schedulers[0]
        first._initial = True
        first.step()
        first._initial = False
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self.milestones, self.last_epoch)
        sched = self.schedulers[idx]
        if idx > 0 and self.milestones[idx - 1] == self.last_epoch:
            sched._jump(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "_last_lr": list(self._last_lr),
                "base_lrs": list(self.base_lrs), "milestones": list(self.milestones),
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state):
        parts = state.get("schedulers")
        if parts is None or len(parts) != len(self.schedulers):
            raise CheckpointError("SequentialLR.load_state_dict: the saved state has "
                                  f"{None if parts is None else len(parts)} schedulers, this "
                                  f"one has {len(self.schedulers)}")
        for s, part in zip(self.schedulers, parts):
            s.load_state_dict(part)
        self.last_epoch, self._last_lr = state["last_epoch"], list(state["_last_lr"])
        self.base_lrs, self.milestones = list(state["base_lrs"]), list(state["milestones"])
