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


class MultiStepLR(LRScheduler):
    """lr = base * gamma ** (number of milestones reached).

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)
    >>> lrs = []
    >>> for _ in range(5): s.step(); lrs.append(round(s.get_last_lr()[0], 6))
    >>> lrs
    [1.0, 0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        super().__init__(optimizer)

    def _next_lr(self, lr, base):
        hits = self.milestones.count(self.last_epoch)   # a milestone listed twice counts twice
        return lr * self.gamma ** hits if hits else lr

    def _lr_at(self, base):
        return base * self.gamma ** bisect_right(self.milestones, self.last_epoch)


class LambdaLR(LRScheduler):
    """lr = base * lr_lambda(epoch), with one function for every group or a list of one per
    group. The functions are not part of `state_dict()` (as in PyTorch): build the schedule
    with the same ones before `load_state_dict`.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
    >>> s.step(); s.step(); s.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, lr_lambda):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise OptimizerError(f"LambdaLR: {len(lr_lambda)} functions for {n} parameter "
                                     "groups; give one, or one per group")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer)

    def step(self):
        self.last_epoch += 1
        self._set([base * f(self.last_epoch) for f, (_, base) in zip(self.lr_lambdas,
                                                                       self._groups())])

    def _jump(self, epoch):
        self.last_epoch = epoch - 1
        self.step()

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class OneCycleLR(LRScheduler):
    """The 1cycle policy, stepped once per batch: the lr rises from max_lr / div_factor to
    max_lr over the first pct_start of `total_steps` (or epochs * steps_per_epoch), then anneals
    ("cos" or "linear") to max_lr / (div_factor * final_div_factor); the momentum (SGD's
    momentum, Adam's beta1) moves the opposite way when cycle_momentum. PyTorch's equations,
    three_phase included; stepping past total_steps raises.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    >>> s = cr.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> lrs = [s.get_last_lr()[0]]
    >>> for _ in range(9): opt.step(); s.step(); lrs.append(s.get_last_lr()[0])
    >>> round(lrs[0], 4), round(max(lrs), 4), lrs.index(max(lrs)), lrs[-1] < 1e-4
    (0.04, 1.0, 2, True)
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise OptimizerError("OneCycleLR: give total_steps, or epochs and "
                                     "steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if int(total_steps) <= 0:
            raise OptimizerError(f"OneCycleLR: total_steps must be positive, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise OptimizerError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise OptimizerError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                                 f"{anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = int(total_steps), anneal_strategy
        t, p = float(self.total_steps), float(pct_start)
        if three_phase:
            self.phases = [(p * t - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (2 * p * t - 2, "max_lr", "initial_lr", "base_momentum",
                            "max_momentum"),
                           (t - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases = [(p * t - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                           (t - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        groups = optimizer.param_groups
        max_lrs = _per_group(max_lr, groups, "max_lr")
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum and not self.use_beta1 and "momentum" not in optimizer.defaults:
            raise OptimizerError("OneCycleLR: optimizer has no momentum (nor betas) to cycle; "
                                 "pass cycle_momentum=False")
        for group, top, lo, hi in zip(groups, max_lrs,
                                      _per_group(base_momentum, groups, "base_momentum"),
                                      _per_group(max_momentum, groups, "max_momentum")):
            group["initial_lr"] = group["lr"] = top / div_factor
            group["max_lr"], group["min_lr"] = top, group["initial_lr"] / final_div_factor
            if self.cycle_momentum:
                group["base_momentum"], group["max_momentum"] = lo, hi
                self._set_momentum(group, hi)
        super().__init__(optimizer)

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value,) + tuple(group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "linear":
            return (end - start) * pct + start
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def step(self):
        self.last_epoch += 1
        step = self.last_epoch
        if step > self.total_steps:
            raise OptimizerError(f"OneCycleLR: tried to step {step} times; the schedule has "
                                 f"total_steps={self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
                if step <= end or i == len(self.phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start = end
        self._set(lrs)

    def _jump(self, epoch):
        self.last_epoch = epoch - 1
        self.step()


def _per_group(value, groups, name):
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise OptimizerError(f"OneCycleLR: {len(value)} values of {name} for "
                                 f"{len(groups)} parameter groups")
        return list(value)
    return [value] * len(groups)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` when a metric has stopped improving for `patience` epochs:
    call `step(metric)` after each validation. mode "min" (a loss) or "max" (an accuracy);
    threshold_mode "rel" or "abs"; `cooldown` epochs of rest after a cut; never below
    `min_lr` (one, or one per group); cuts smaller than `eps` are skipped. PyTorch's rules.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = cr.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for loss in [1.0, 0.9, 0.9, 0.9, 0.9]: s.step(loss)
    >>> s.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise OptimizerError(f"ReduceLROnPlateau: expected a chainrule optimizer, got "
                                 f"{type(optimizer).__name__}")
        if factor >= 1.0:
            raise OptimizerError(f"ReduceLROnPlateau: factor must be below 1, got {factor}")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise OptimizerError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and "
                                 f"threshold_mode 'rel' or 'abs'; got {mode!r}, "
                                 f"{threshold_mode!r}")
        self.optimizer = optimizer
        groups = optimizer.param_groups
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(groups):
                raise OptimizerError(f"ReduceLROnPlateau: {len(min_lr)} min_lr values for "
                                     f"{len(groups)} parameter groups")
            self.min_lrs = list(min_lr)
        else:
            self.min_lrs = [min_lr] * len(groups)
        self.mode, self.factor, self.patience = mode, factor, int(patience)
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = int(cooldown), eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.last_epoch = 0
        self.base_lrs = [g["lr"] for g in groups]
        self._last_lr = [g["lr"] for g in groups]

    def step(self, metrics):
        """Record this epoch's metric (a number or a 0-d tensor) and cut the lr if it has
        not improved for more than `patience` epochs."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, floor)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _is_better(self, a):
        best, t = self.best, self.threshold
        if self.mode == "min":
            return a < (best * (1 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (t + 1) if self.threshold_mode == "rel" else best + t)
