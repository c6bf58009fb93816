"""The training loop: `fit` runs epochs of forward, backward and update with a progress bar,
records a per-epoch history, evaluates on validation data, stops early, checkpoints every
epoch, resumes bit for bit, stops cleanly on a non-finite loss, and plots the curves.

A checkpoint holds everything the next epoch depends on: the model, the optimizer (with its
lr), the scheduler, chainrule's random generator (dropout, init), the training loader's
shuffling generator, the history and the early-stopping state. Resuming from it therefore
repeats exactly the computation an uninterrupted run would have done.
"""
import math
import os
import sys
import time

import numpy as np

from . import backend
from .autograd import no_grad
from .errors import AnomalyError, CheckpointError, DataError
from .tensor import Tensor

LAST, BEST = "last.safetensors", "best.safetensors"


# ----- metrics -----
def accuracy(outputs, targets):
    """Fraction of correct predictions. Several output columns: the argmax is the class (targets
    may be labels or one-hot rows). One column: probabilities are cut at 0.5, logits (any value
    outside [0, 1]) at 0.

    >>> import chainrule as cr
    >>> cr.train.accuracy(cr.tensor([[2.0, 1.0], [0.0, 3.0]]), cr.tensor([0, 0]))
    0.5
    """
    out = outputs._data if isinstance(outputs, Tensor) else np.asarray(outputs)
    t = targets._data if isinstance(targets, Tensor) else np.asarray(targets)
    if out.ndim >= 2 and out.shape[-1] > 1:
        pred = out.argmax(-1)
        if t.shape == out.shape:
            t = t.argmax(-1)
    else:
        out = out.reshape(-1)
        cut = 0.5 if out.size and out.min() >= 0 and out.max() <= 1 else 0.0
        pred = (out > cut).astype(np.int64)
    t = t.reshape(pred.shape)
    return float(np.mean(pred == t)) if pred.size else float("nan")


class History(dict):
    """Per-epoch lists ('loss', 'accuracy', 'val_loss', 'val_accuracy', 'lr', 'time') plus
    how the run ended: `stop_reason` ('completed', 'early_stopping', 'non_finite_loss'),
    `best_epoch`, `checkpoint` (last good), `best_checkpoint`, `plot`, `report`.

    >>> import chainrule as cr
    >>> h = cr.train.History()
    >>> h.add({"loss": 0.5, "accuracy": 0.75})
    >>> h.add({"loss": 0.25, "accuracy": 1.0})
    >>> h.epochs, h["loss"]
    (2, [0.5, 0.25])
    >>> h.summary()
    'loss 0.2500  accuracy 100.00%'
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_reason = None
        self.best_epoch = None
        self.checkpoint = self.best_checkpoint = self.plot = self.report = None

    @property
    def epochs(self):
        return len(self.get("loss", []))

    def add(self, row):
        for key, value in row.items():
            self.setdefault(key, []).append(value)

    def summary(self, epoch=-1):
        """One line for an epoch: 'loss 0.1234  accuracy 96.5%  val_loss ...'."""
        parts = []
        for key, values in self.items():
            if key in ("time",) or not values:
                continue
            v = values[epoch]
            parts.append(f"{key} {_fmt(key, v)}")
        return "  ".join(parts)


def _fmt(key, v):
    if v is None:
        return "-"
    if "acc" in key:
        return f"{100 * v:.2f}%"
    if key == "lr":
        return f"{v:.3g}"
    return f"{v:.4f}"


class EarlyStopping:
    """Stop when `monitor` (a history key such as 'val_loss' or 'val_accuracy') has not improved
    by more than `min_delta` for `patience` epochs; with restore_best the model gets the
    weights of its best epoch back at the end. mode 'auto' minimizes losses, maximizes the rest.
    patience=0 (like 1, as in PyTorch Lightning) stops at the first epoch that does not improve.

    >>> es = EarlyStopping("val_loss", patience=2)
    >>> [es.update(v) for v in (1.0, 0.5, 0.6, 0.7)], es.should_stop
    ([True, True, False, False], True)
    >>> es = EarlyStopping("val_loss", patience=0)
    >>> es.should_stop, es.update(1.0), es.should_stop, es.update(1.0), es.should_stop
    (False, True, False, False, True)
    """

    def __init__(self, monitor="val_loss", patience=5, mode="auto", min_delta=0.0,
                 restore_best=True):
        if mode == "auto":
            mode = "min" if "loss" in monitor else "max"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        if not isinstance(patience, (int, float, np.integer, np.floating)) \
                or not (0 <= patience < math.inf and int(patience) == patience):
            raise ValueError(f"EarlyStopping: patience must be an int >= 0 (0 stops at the "
                             f"first epoch that does not improve), got {patience!r}")
        self.monitor, self.patience, self.mode = monitor, int(patience), mode
        self.min_delta, self.restore_best = float(min_delta), bool(restore_best)
        self.best, self.best_epoch, self.bad_epochs = None, None, 0

    def update(self, value, epoch=None):
        """Record this epoch's value; True when it is the best so far."""
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min"
            else value > self.best + self.min_delta)
        if better and math.isfinite(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self):
        # only after an epoch that did not improve: patience 0 must not stop before training
        return self.bad_epochs > 0 and self.bad_epochs >= self.patience

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]


# ----- evaluation -----
def evaluate(model, loss_fn, loader, metrics=accuracy, device=None):
    """Mean loss and metrics over `loader` in eval mode without a graph. A loader that
    yields no samples raises DataError (a mean over nothing is not a loss of 0). `device`
    moves each batch there (the model must be there already).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> X, y = cr.data.xor(40, seed=0)
    >>> model = nn.Sequential(nn.Linear(2, 2))
    >>> sorted(cr.train.evaluate(model, nn.CrossEntropyLoss(), cr.data.DataLoader(
    ...     cr.data.TensorDataset(X, y), batch_size=16)))
    ['accuracy', 'loss']
    """
    metrics = _metric_dict(metrics)
    was_training = getattr(model, "training", False)
    model.eval()
    sums, n = dict.fromkeys(["loss", *metrics], 0.0), 0
    try:
        with no_grad():
            for x, y in loader:
                x, y = to_device(x, device), to_device(y, device)
                out = model(x)
                k = _batch_len(y)
                sums["loss"] += float(loss_fn(out, y).item()) * k
                for name, fn in metrics.items():
                    sums[name] += fn(out, y) * k
                n += k
    finally:
        model.train(was_training)
    if n == 0:
        raise DataError(_no_batches("evaluate", "the loader", loader))
    return {key: value / n for key, value in sums.items()}


def to_device(batch, device):
    """`batch` (a Tensor, or tuples, lists and dicts of them) on `device` (None: unchanged).

    >>> import chainrule as cr
    >>> x, y = cr.train.to_device((cr.ones(2), cr.zeros(2)), "check")
    >>> str(x.device), str(y.device)
    ('check:0', 'check:0')
    """
    if device is None:
        return batch
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def _metric_dict(metrics):
    if metrics is None:
        return {}
    if callable(metrics):
        return {getattr(metrics, "__name__", "metric"): metrics}
    return dict(metrics)


def _batch_len(y):
    return y.shape[0] if getattr(y, "ndim", 0) else 1


def _has_no_batches(loader):
    try:
        return len(loader) == 0
    except TypeError:  # no len(): found out while iterating
        return False


def _no_batches(who, what, loader):
    """The message for a loader that yielded no samples: what it reads and why it is empty."""
    dataset, size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
    try:
        n = len(dataset) if dataset is not None else None
    except TypeError:
        n = None
    desc = f"a {type(loader).__name__}"
    if dataset is not None:
        desc += (f" over a {type(dataset).__name__} of "
                 f"{n if n is not None else 'unknown size'} samples")
    if size is not None:
        desc += f" with batch_size={size}"
    if getattr(loader, "drop_last", False):
        desc += ", drop_last=True"
    if n == 0:
        fix = "the dataset is empty; check how it was built or split"
    elif getattr(loader, "drop_last", False) and n is not None and size and n < size:
        fix = "drop_last=True drops the only, partial batch; lower batch_size or drop_last=False"
    else:
        fix = "check the data"
    return (f"{who}: {what} yields no samples: {desc}. {fix} (a mean over no batches is not a "
            "loss of 0)")


# ----- the loop -----
def fit(model, loss_fn, optimizer, train_loader, val_loader=None, epochs=10, scheduler=None,
        checkpoint_dir=None, early_stopping=None, metrics=accuracy, progress=True,
        flow_report=False, resume=None, plot=True, clip_grad_norm=None,
        on_nonfinite="stop", distributed=False, compile=False, device=None):
    """Train `model` and return its History.

    Each epoch: for every batch `loss_fn(model(x), y)`, backward, optional gradient clipping,
    `optimizer.step()`; then `scheduler.step()`, validation, early stopping and (with
    `checkpoint_dir`) an atomic checkpoint `last.safetensors` (+ `best.safetensors` when the
    monitored value improves) and the curves in `curves.png`.

    early_stopping: None, a patience (int; monitors 'val_loss', or 'loss' without validation
                    data; 0 stops at the first epoch that does not improve) or an
                    EarlyStopping.
    A loader that yields no samples raises DataError (never a loss of 0.0).
    resume:         a checkpoint path (or True for `checkpoint_dir/last.safetensors`): restores
                    model, optimizer, scheduler, random generators, data order and history,
                    then continues; the result equals an uninterrupted run bit for bit.
    flow_report:    on each epoch's last batch, run the backward through `cr.explain` and print
                    its gradient-flow diagnosis (per-layer gradient norms, dead/saturated units).
    on_nonfinite:   'stop' (default) ends training on a NaN/inf loss with a report naming the
                    first op that produced it, and puts back the last good epoch's state
                    (the checkpoint on disk is never overwritten by it); 'raise' raises
                    AnomalyError with that report instead.
    distributed:    train data-parallel on every rank of an MPI job (`mpiexec -n N python
                    script.py`; the process group is initialised if needed): the model is
                    wrapped in DistributedDataParallel, the training data sharded with
                    DistributedSampler (batch_size per rank), metrics reduced across ranks;
                    rank 0 alone prints and writes checkpoints (docs/distributed.md).
    compile:        capture the training step (forward, loss, backward, clipping) once with
                    `cr.compile` and replay it for every batch (docs/static_graphs.md): the
                    same numbers, less Python per batch. A step that cannot be captured runs
                    eagerly, with one warning saying why.
    device:         train on this device ("cuda", "check", a cr.device): the model is moved
                    there in place first (the optimizer keeps working), and every training
                    and validation batch is moved as it arrives; checkpoints are host files
                    as always.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> X, y = cr.data.xor(64, seed=0)
    >>> loader = cr.data.DataLoader(cr.data.TensorDataset(X, y), batch_size=16, shuffle=True)
    >>> model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    >>> h = cr.train.fit(model, nn.CrossEntropyLoss(), cr.optim.Adam(model.parameters(), 0.05),
    ...                  loader, epochs=3, progress=False)
    >>> h.epochs, h.stop_reason
    (3, 'completed')
    """
    if device is not None:
        device = backend.check_device(device, "fit")
        if distributed and device.type != "cpu":
            raise ValueError(f"fit(distributed=True) trains on the CPU only (MPI reduces host "
                             f"memory); leave device={str(device)!r} out")
        model.to(device)
    run = (_DistributedRun if distributed else _Run)(
        model, loss_fn, optimizer, train_loader, val_loader, scheduler, checkpoint_dir,
        early_stopping, metrics, progress, flow_report, clip_grad_norm, on_nonfinite)
    run.device = device
    if compile:
        if distributed:
            raise ValueError("fit(compile=True) does not combine with distributed=True yet; "
                             "pass one of them")
        run.compiled = _compiled_step(run)
    for what, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is not None and _has_no_batches(loader):  # before any epoch is spent
            raise DataError(_no_batches("fit", what, loader))
    if resume is True and checkpoint_dir is None:
        raise ValueError("fit(resume=True) resumes from checkpoint_dir/last.safetensors; pass "
                         "checkpoint_dir=, or resume=<path of a checkpoint>")
    if resume:
        run.restore(os.path.join(checkpoint_dir, LAST) if resume is True else resume)
    run.last_good = run.state(copy=True)
    start = run.history.epochs
    if run.history.stop_reason not in (None, "completed") or (
            run.stopper is not None and run.stopper.should_stop):
        start = epochs  # the saved run had already ended
    for epoch in range(start, epochs):
        if not run.train_epoch(epoch, epochs):
            break
        if run.end_epoch(epoch):
            break
    else:
        run.history.stop_reason = run.history.stop_reason or "completed"
    run.finish(plot)
    return run.history


def _compiled_step(run):
    """fit(compile=True)'s training step for `cr.compile`: everything up to the update (the
    loss is checked for NaN before optimizer.step(), as in the eager loop)."""
    from .static import compile as compile_step
    model, loss_fn, optimizer, clip = run.model, run.loss_fn, run.optimizer, run.clip

    def train_step(x, y):
        out = run.forward(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            from .optim.clip import clip_grad_norm_
            clip_grad_norm_(model.parameters(), clip)
        return loss, out
    return compile_step(train_step, fallback=True)


class _Run:
    """The state of one `fit` call, split into short steps."""

    compiled = None     # fit(compile=True): the compiled training step
    device = None       # fit(device=...): where each batch is moved

    def __init__(self, model, loss_fn, optimizer, loader, val_loader, scheduler, ckpt_dir,
                 early_stopping, metrics, progress, flow_report, clip, on_nonfinite):
        if on_nonfinite not in ("stop", "raise"):
            raise ValueError(f"fit: on_nonfinite must be 'stop' or 'raise', got {on_nonfinite!r}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.loader, self.val_loader, self.scheduler = loader, val_loader, scheduler
        self.ckpt_dir, self.metrics = ckpt_dir, _metric_dict(metrics)
        self.progress, self.flow_report, self.clip = progress, flow_report, clip
        self.on_nonfinite = on_nonfinite
        self.stopper = _as_stopper(early_stopping, val_loader is not None)
        self.history = History()
        self.best_weights = None

    # ----- state and checkpoints -----
    def state(self, copy=False):
        model = {k: (v._data.copy() if copy else v) for k, v in self.model.state_dict().items()}
        state = {
            "epoch": self.history.epochs,
            "model": model,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": backend.get_rng_state(),
            "train_loader": (self.loader.state_dict() if hasattr(self.loader, "state_dict")
                             else None),
            "history": {k: list(v) for k, v in self.history.items()},
            "early_stopping": self.stopper.state_dict() if self.stopper else None,
            "best_weights": self.best_weights,
        }
        if copy:
            import copy as _copy
            state = _copy.deepcopy(state)
        return state

    def load(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        backend.set_rng_state(state["rng"])
        if state.get("train_loader") is not None and hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(state["train_loader"])
        history = History()
        for key, values in state["history"].items():
            history[key] = list(values)
        history.checkpoint, history.best_checkpoint = (self.history.checkpoint,
                                                       self.history.best_checkpoint)
        self.history = history
        if self.stopper is not None and state.get("early_stopping") is not None:
            self.stopper.load_state_dict(state["early_stopping"])
        self.best_weights = state.get("best_weights")

    def restore(self, path):
        from .io import load
        state = load(path)
        missing = [k for k in ("model", "optimizer", "rng", "history") if k not in state]
        if missing:
            raise CheckpointError(f"fit(resume={path!r}): the file lacks {missing}; it is not a "
                                  "training checkpoint written by fit (a bare state_dict is "
                                  "loaded with model.load_state_dict(cr.load(path)))")
        self.load(state)
        self.history.checkpoint = os.fspath(path)
        if self.progress:
            _write(f"resumed from {path} after epoch {state['epoch']}")

    def save(self, improved):
        if self.ckpt_dir is None:
            return
        from .io import save
        state = self.state()
        meta = {"epoch": self.history.epochs, "kind": "chainrule.train.fit"}
        last = os.path.join(self.ckpt_dir, LAST)
        save(state, last, metadata=meta)
        self.history.checkpoint = last
        if improved:
            best = os.path.join(self.ckpt_dir, BEST)
            save(state, best, metadata=meta)
            self.history.best_checkpoint = best

    # ----- one epoch -----
    def train_epoch(self, epoch, epochs):
        """Train over the loader once; False when a non-finite loss stopped the run."""
        self.model.train()
        bar = _bar(self.loader, epoch, epochs, self.progress)
        n_batches = len(self.loader)
        sums, n, t0 = dict.fromkeys(["loss", *self.metrics], 0.0), 0, time.perf_counter()
        for b, (x, y) in enumerate(bar):
            x, y = to_device(x, self.device), to_device(y, self.device)
            # compiled: forward, zero_grad, backward and clipping replayed in one call (the
            # flow report's batch runs eagerly: explain needs the graph)
            fast = self.compiled is not None and not (self.flow_report and b == n_batches - 1)
            if fast:
                loss, out = self.compiled(x, y)
            else:
                out = self.forward(x)
                loss = self.loss_fn(out, y)
            value = float(loss.item())
            if not self.all_finite(value):
                self.stop_nonfinite(value, epoch, b, n_batches, x, y)
                _close(bar)
                return False
            if not fast:
                self.optimizer.zero_grad()
                self.backward(loss, last=(b == n_batches - 1))
                if self.clip is not None:
                    from .optim.clip import clip_grad_norm_
                    clip_grad_norm_(self.model.parameters(), self.clip)
            self.optimizer.step()
            k = _batch_len(y)
            sums["loss"] += value * k
            for name, fn in self.metrics.items():
                sums[name] += fn(out, y) * k
            n += k
            if bar is not self.loader:
                bar.set_postfix({key: _fmt(key, s / max(n, 1)) for key, s in sums.items()},
                                refresh=False)
        _close(bar)
        sums, n = self.reduce_sums(sums, n)
        if n == 0:
            raise DataError(_no_batches("fit", "train_loader", self.loader))
        self.epoch_row = {key: s / n for key, s in sums.items()}
        self.epoch_row["lr"] = self.optimizer.param_groups[0]["lr"]
        self.epoch_time = time.perf_counter() - t0
        return True

    # hooks that fit(distributed=True) overrides (_DistributedRun, at the end of this file)
    def forward(self, x):
        return self.model(x)

    def all_finite(self, value):
        return math.isfinite(value)

    def reduce_sums(self, sums, n):
        return sums, n

    def validate(self):
        return evaluate(self.model, self.loss_fn, self.val_loader, self.metrics, self.device)

    def backward(self, loss, last):
        if self.flow_report and last:
            from . import explain
            rep = explain(loss)  # runs the real backward pass and fills .grad
            if self.progress:  # above the progress bar, not through it
                from tqdm.auto import tqdm
                tqdm.write(str(rep.flow()), file=sys.stdout)
            else:
                print(rep.flow())
        else:
            loss.backward()

    def end_epoch(self, epoch):
        """Schedule, validate, record, checkpoint; True when early stopping ends the run."""
        if self.scheduler is not None:
            self.scheduler.step()
        row = dict(self.epoch_row)
        if self.val_loader is not None:
            val = self.validate()
            row.update({f"val_{k}": v for k, v in val.items()})
        row["time"] = self.epoch_time
        self.history.add(row)
        improved = self.track(row, epoch)
        self.save(improved)
        self.last_good = self.state(copy=True)
        if self.progress:
            _write(f"epoch {epoch + 1}: {self.history.summary()}  ({self.epoch_time:.2f}s)")
        if self.stopper is not None and self.stopper.should_stop:
            self.history.stop_reason = "early_stopping"
            if self.progress:
                _write(f"early stopping: {self.stopper.monitor} has not improved for "
                       f"{self.stopper.patience} epochs (best {self.stopper.best:.4g} at epoch "
                       f"{self.stopper.best_epoch + 1})")
            return True
        return False

    def track(self, row, epoch):
        if self.stopper is None:
            return False
        if self.stopper.monitor not in row:
            raise KeyError(f"EarlyStopping monitors {self.stopper.monitor!r}, but the history "
                           f"has {sorted(row)}; pick one of those (val_* needs val_loader)")
        improved = self.stopper.update(row[self.stopper.monitor], epoch)
        if improved:
            self.history.best_epoch = epoch
            if self.stopper.restore_best:
                self.best_weights = {k: v._data.copy()
                                     for k, v in self.model.state_dict().items()}
        return improved

    # ----- endings -----
    def stop_nonfinite(self, value, epoch, batch, n_batches, x, y):
        culprit = _first_nonfinite(self.model, self.loss_fn, x, y)
        good_epochs = self.last_good["epoch"]
        self.load(self.last_good)
        where = (f"the last good checkpoint {self.history.checkpoint} (epoch {good_epochs}) is "
                 "kept" if self.history.checkpoint else
                 "no checkpoint was written (pass checkpoint_dir= to keep one)")
        report = "\n".join([
            f"Training stopped: the loss became {value} at epoch {epoch + 1}, batch "
            f"{batch + 1}/{n_batches}.",
            f"  first non-finite value: {culprit}",
            f"  learning rate: {self.optimizer.param_groups[0]['lr']:.4g}",
            f"  model and optimizer were put back to the end of epoch {good_epochs}; {where}.",
            "  Likely fixes: a lower learning rate, gradient clipping (clip_grad_norm=1.0), a "
            "numerically stable loss (CrossEntropyLoss / BCEWithLogitsLoss on logits).",
        ])
        self.history.stop_reason, self.history.report = "non_finite_loss", report
        if self.on_nonfinite == "raise":
            raise AnomalyError(report)
        print(report, file=sys.stderr)

    def finish(self, plot):
        if (self.history.stop_reason == "early_stopping" and self.stopper.restore_best
                and self.best_weights is not None):
            self.model.load_state_dict(self.best_weights)
        if plot and self.ckpt_dir is not None and self.history.epochs:
            path = plot if isinstance(plot, (str, os.PathLike)) else os.path.join(
                self.ckpt_dir, "curves.png")
            self.history.plot = plot_history(self.history, path)


def _first_nonfinite(model, loss_fn, x, y):
    """Replay the batch under anomaly mode and name the first op whose output is NaN/inf
    although its inputs were finite, with the user's source line that called it."""
    for name, p in model.named_parameters():
        if not np.isfinite(p._data).all():
            return f"parameter {name} (shape {p.shape}) already holds NaN/inf"
    if not np.isfinite(x._data).all() if isinstance(x, Tensor) else False:
        return "the input batch itself contains NaN/inf"
    from .anomaly import detect_anomaly
    from .autograd import toposort
    with detect_anomaly():
        loss = loss_fn(model(x), y)
    if loss._node is None:
        return "unknown (the loss has no graph)"
    for node in reversed(toposort([loss._node])):
        if np.isfinite(node.out).all():
            continue
        if all(np.isfinite(t._data).all() for t in node.inputs):
            where = ""
            if node.trace is not None:
                filename, line, func = node.trace
                import linecache
                text = linecache.getline(filename, line).strip()
                where = f', made at File "{filename}", line {line}, in {func}: {text}'
            return (f"op '{node.prim.name}' turned finite inputs of shapes "
                    f"{[t.shape for t in node.inputs]} into NaN/inf{where}")
    return "not reproduced on replay"


def _as_stopper(early_stopping, has_val):
    if early_stopping is None or early_stopping is False:
        return None
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    if isinstance(early_stopping, int):
        return EarlyStopping("val_loss" if has_val else "loss", patience=early_stopping)
    raise TypeError(f"fit: early_stopping must be None, an int patience or an EarlyStopping, "
                    f"got {type(early_stopping).__name__}")


def _bar(loader, epoch, epochs, progress):
    if not progress:
        return loader
    from tqdm.auto import tqdm
    return tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch",
                dynamic_ncols=True, mininterval=0.2)


def _close(bar):
    if hasattr(bar, "close"):
        bar.close()


def _write(line):
    from tqdm.auto import tqdm
    tqdm.write(line, file=sys.stderr)


# ----- plots -----
def plot_history(history, path):
    """Save loss and accuracy curves (train and validation, per epoch) as a PNG, atomically;
    returns the path. Uses matplotlib's Agg canvas directly (no pyplot, no global state).

    >>> import chainrule as cr, os, tempfile
    >>> h = cr.train.History(loss=[1.0, 0.5], accuracy=[0.5, 0.75])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = cr.train.plot_history(h, os.path.join(folder, "history.png"))
    ...     print(os.path.basename(path), os.path.getsize(path) > 1000)
    history.png True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import io as _bytes

    from .io import atomic_write
    panels = [k for k in ("loss", "accuracy") if k in history] or [next(iter(history))]
    fig = Figure(figsize=(5 * len(panels), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, key in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = _bytes.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write(path, buf.getvalue())
    return os.fspath(path)


# ----- distributed training: fit(..., distributed=True) -----
class _DistributedRun(_Run):
    """`fit(distributed=True)`: every rank runs the loop on its own shard of the training data
    (DistributedSampler, a new order each epoch), the model wrapped in DistributedDataParallel
    so gradients are averaged across ranks. Each batch's loss is summed across ranks to decide
    together whether it is finite; the epoch's sums and the validation (sharded, rank 0's
    buffers) are reduced, so every rank records the same history and takes the same decisions.
    Rank 0 alone prints, writes the checkpoints (atomically) and the curves, then all ranks
    meet at a barrier. A checkpoint carries every rank's random generator and loader state,
    so a resume with the same world size repeats the uninterrupted run."""

    def __init__(self, model, loss_fn, optimizer, loader, val_loader, *args, **kwargs):
        from . import distributed as dist
        from .nn.parallel import DistributedDataParallel
        if not dist.is_initialized():
            dist.init_process_group("mpi")
        self.dist, self.rank, self.world = dist, dist.get_rank(), dist.get_world_size()
        if isinstance(model, DistributedDataParallel):
            self.ddp, model = model, model.module
        else:
            self.ddp = DistributedDataParallel(model)
        super().__init__(model, loss_fn, optimizer, self._shard(loader), val_loader, *args,
                         **kwargs)
        self.progress = self.progress and self.rank == 0
        self.rank_states = None     # every rank's generators, gathered for a checkpoint

    def _shard(self, loader):
        from .data import DataLoader, DistributedSampler
        if isinstance(getattr(loader, "sampler", None), DistributedSampler):
            return loader
        if not isinstance(loader, DataLoader) or loader.sampler is not None:
            raise TypeError("fit(distributed=True) shards the training DataLoader's dataset "
                            "across ranks; pass a chainrule DataLoader (without a sampler), or "
                            "one with sampler=DistributedSampler(dataset)")
        seed = None
        if self.rank == 0:   # one order for all ranks: rank 0's loader picks the seed
            import copy
            seed = int(copy.deepcopy(loader.generator).integers(2 ** 31))
        seed = self.dist.broadcast_object(seed, src=0)
        sampler = DistributedSampler(loader.dataset, self.world, self.rank,
                                     shuffle=loader.shuffle, seed=seed)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                          drop_last=loader.drop_last, collate_fn=loader.collate_fn)

    def _reduce(self, values):
        buf = np.array(values, dtype=np.float64)
        self.dist.all_reduce(Tensor._wrap(buf))
        return buf

    # the hooks of _Run
    def forward(self, x):
        return self.ddp(x)

    def all_finite(self, value):
        self.global_loss = float(self._reduce([value])[0])
        return math.isfinite(self.global_loss)

    def reduce_sums(self, sums, n):
        keys = list(sums)
        buf = self._reduce([sums[k] for k in keys] + [n])
        return dict(zip(keys, buf[:-1].tolist())), int(buf[-1])

    def validate(self):
        """Each rank evaluates every world-th validation sample with rank 0's buffers; the
        means are combined by sample count."""
        from .data import DataLoader, Subset
        self.ddp._sync_buffers()
        val = self.val_loader
        if not isinstance(val, DataLoader) or val.sampler is not None:
            return evaluate(self.model, self.loss_fn, val, self.metrics)   # whole set each
        part = Subset(val.dataset, np.arange(self.rank, len(val.dataset), self.world))
        keys = ["loss", *self.metrics]
        k = len(part)
        if k:
            res = evaluate(self.model, self.loss_fn, DataLoader(
                part, batch_size=val.batch_size, collate_fn=val.collate_fn), self.metrics)
        else:
            res = dict.fromkeys(keys, 0.0)
        buf = self._reduce([res[key] * k for key in keys] + [k])
        return {key: v / buf[-1] for key, v in zip(keys, buf[:-1].tolist())}

    def train_epoch(self, epoch, epochs):
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        return super().train_epoch(epoch, epochs)

    def backward(self, loss, last):
        super().backward(loss, last and self.rank == 0)   # the flow report: rank 0 only

    def stop_nonfinite(self, value, *args):
        if math.isfinite(value):     # another rank's loss was not finite
            value = self.global_loss
        if self.rank == 0:
            return super().stop_nonfinite(value, *args)
        import contextlib
        import io
        with contextlib.redirect_stderr(io.StringIO()):   # one report, from rank 0
            return super().stop_nonfinite(value, *args)

    # checkpoints: rank 0 writes, everyone waits
    def save(self, improved):
        if self.ckpt_dir is None:
            return
        states = [None] * self.world
        self.dist.all_gather_object(states, {
            "rng": backend.get_rng_state(),
            "train_loader": (self.loader.state_dict() if hasattr(self.loader, "state_dict")
                             else None)})
        self.rank_states = states
        try:
            if self.rank == 0:
                super().save(improved)
            else:
                self.history.checkpoint = os.path.join(self.ckpt_dir, LAST)
                if improved:
                    self.history.best_checkpoint = os.path.join(self.ckpt_dir, BEST)
        finally:
            self.rank_states = None
        self.dist.barrier()

    def state(self, copy=False):
        state = super().state(copy)
        if self.rank_states is not None:
            state["distributed"] = {"world_size": self.world, "ranks": self.rank_states}
        return state

    def load(self, state):
        saved = state.get("distributed")
        if saved is not None and int(saved["world_size"]) != self.world:
            raise CheckpointError(
                f"fit(resume=...): the checkpoint was written by a job of {saved['world_size']} "
                f"ranks and this one has {self.world}; each rank's data shard and random state "
                f"are in it, so resume with mpiexec -n {saved['world_size']}")
        super().load(state)
        if saved is not None:
            mine = saved["ranks"][self.rank]
            backend.set_rng_state(mine["rng"])
            if mine.get("train_loader") is not None and hasattr(self.loader, "load_state_dict"):
                self.loader.load_state_dict(mine["train_loader"])

    def finish(self, plot):
        self.ddp._sync_buffers()    # every rank ends with rank 0's model
        super().finish(plot if self.rank == 0 else False)
        self.dist.barrier()
