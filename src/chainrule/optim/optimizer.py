"""The optimizer base class: parameter groups, per-parameter state, state_dict round trips.

Updates work on the parameters' NumPy arrays in place (no graph is recorded and the update
costs no Tensor overhead); each update bumps the parameter's version counter, so a graph that
saved the old value refuses to backward through it, as in PyTorch.
"""
from .. import backend
from ..errors import CheckpointError, DTypeError, OptimizerError
from ..tensor import Tensor

np = backend.np


def write_grad(p, values):
    """Set p.grad's values (broadcast) in place, as PyTorch's in-place gradient updates do
    (zero_grad, the clippers): a saved reference to p.grad sees them. A gradient in a graph
    (from create_graph) or a read-only one is replaced by a new tensor instead."""
    g = p.grad
    data = g._data
    if g._node is None and not g.requires_grad and getattr(data.flags, "writeable", True):
        data[...] = values     # (a device array's flags have no `writeable`: always writable)
        g._version += 1
    else:
        xp = backend.xp_of(data)
        p.grad = Tensor._wrap(xp.array(xp.broadcast_to(values, g.shape), dtype=g.dtype))


# Bumped by Module.to: the next step() of every optimizer moves state left on another device
# than its parameter (one int compare per step otherwise), so an optimizer made before
# model.to("cuda") keeps working.
_moves = [0]


def note_move():
    """Tell optimizers that parameters may have changed device (called by Module.to)."""
    _moves[0] += 1


class _Required:
    def __repr__(self):
        return "<required>"


required = _Required()


class Optimizer:
    """Base class. Subclasses set `defaults` and implement `_update(p, g, state, group)`,
    which changes `p` (an ndarray) in place using the gradient array `g`.

    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = cr.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.numpy().tolist()
    [0.800000011920929, 1.600000023841858]
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # id(param) -> dict of arrays / numbers
        self._moves_seen = _moves[0]
        groups = _as_groups(params, type(self).__name__)
        for group in groups:
            self.add_param_group(group)

    # ----- groups -----
    def add_param_group(self, group):
        """Add a group of parameters with its own options (those left out take the defaults)."""
        name = type(self).__name__
        group = dict(group)
        params = _param_list(group.get("params"), name)
        group["params"] = params
        for key, value in self.defaults.items():
            if value is required and key not in group:
                raise OptimizerError(f"{name}: parameter group needs a value for {key!r}")
            group.setdefault(key, value)
        seen = {id(p): gi for gi, g in enumerate(self.param_groups) for p in g["params"]}
        for i, p in enumerate(params):
            if id(p) in seen:
                where = (f"parameter group {seen[id(p)]}" if seen[id(p)] < len(self.param_groups)
                         else "this group")
                raise OptimizerError(
                    f"{name}: parameter {i} of the new group (shape {p.shape}) is already in "
                    f"{where}; each parameter may appear once. Pass model.parameters() once, or "
                    "split them into disjoint groups.")
            seen[id(p)] = len(self.param_groups)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """Subclasses validate hyper-parameters here (raise OptimizerError)."""

    # ----- the loop -----
    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (to None, or to zeros with set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:   # in place, as PyTorch: a saved reference to p.grad sees the zeros
                    write_grad(p, 0)

    def step(self, closure=None):
        """Update every parameter that has a gradient; `closure` re-evaluates the loss."""
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        if getattr(self, "_moves_seen", None) != _moves[0]:
            self._follow_parameters()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._data
                if g.shape != p._data.shape:
                    from ..errors import ShapeError
                    raise ShapeError(
                        f"{type(self).__name__}.step: gradient shape {g.shape} differs from "
                        f"parameter shape {p._data.shape}; a gradient was set by hand?")
                state = self.state.setdefault(id(p), {})
                self._update(p._data, g, state, group)
                p._version += 1
        return loss

    def _update(self, p, g, state, group):
        raise NotImplementedError

    def _follow_parameters(self):
        """Move each state array to its parameter's device (after a Module.to)."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(id(p))
                if not state:
                    continue
                here = backend.device_of(p._data)
                for key, v in state.items():
                    if backend.is_array(v) and backend.device_of(v) != here:
                        state[key] = backend.to_device(v, here)
        self._moves_seen = _moves[0]

    # ----- checkpoints -----
    def state_dict(self):
        """{'state': {index: {name: array | number}}, 'param_groups': [{options, 'params':
        [index, ...]}]}, parameters numbered in order across groups, as in PyTorch."""
        index, groups = 0, []
        state = {}
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                if id(p) in self.state:   # arrays stay on the parameter's device
                    state[index] = {k: (v.copy() if backend.is_array(v) else v)
                                    for k, v in self.state[id(p)].items()}
                ids.append(index)
                index += 1
            packed["params"] = ids
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by `state_dict` (for an optimizer over parameters
        of the same shapes, in the same order). All problems are reported at once."""
        name = type(self).__name__
        try:
            saved_groups = list(state_dict["param_groups"])
            saved_state = dict(state_dict["state"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{name}.load_state_dict: expected a dict with 'state' and "
                                  f"'param_groups' (from optimizer.state_dict()); {exc!r}") from None
        if len(saved_groups) != len(self.param_groups):
            raise CheckpointError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}")
        problems, by_index = [], {}
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = list(saved["params"])
            if len(ids) != len(group["params"]):
                problems.append(f"group {gi}: saved {len(ids)} parameters, have "
                                f"{len(group['params'])}")
                continue
            for idx, p in zip(ids, group["params"]):
                by_index[int(idx)] = p
        new_state = {}
        for idx, pstate in saved_state.items():
            p = by_index.get(int(idx))
            if p is None:
                problems.append(f"state for parameter {idx}, which no group holds")
                continue
            new_state[id(p)] = _restore_state(pstate, p, idx, problems)
        if problems:
            raise CheckpointError(f"{name}.load_state_dict: " + "; ".join(problems))
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = tuple(value) if isinstance(group.get(key), tuple) else value
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} tensors, {opts}")
        return "\n".join(lines) + "\n)"


def _restore_state(pstate, p, idx, problems):
    """One parameter's saved state, its arrays copied onto the parameter's device and dtype
    (a checkpoint loads on the host; the state follows the parameter, as in PyTorch)."""
    out = {}
    for key, value in dict(pstate).items():
        if isinstance(value, Tensor):
            value = value._data
        if backend.is_array(value) and value.ndim > 0:
            if value.shape != p._data.shape:
                problems.append(f"parameter {idx} state {key!r} has shape {value.shape}, the "
                                f"parameter has shape {p._data.shape}")
                continue
            value = value.astype(p._data.dtype, copy=True)
            value = backend.beside(value, p._data)
        elif backend.is_array(value):
            value = value.item()
        out[key] = value
    return out


def _as_groups(params, name):
    if isinstance(params, Tensor):
        raise OptimizerError(f"{name}: params should be an iterable of Tensors (e.g. "
                             "model.parameters() or [w, b]), got a single Tensor; wrap it in a list")
    if isinstance(params, dict):
        params = [params]
    params = _listed(params, name)
    if not params:
        raise OptimizerError(
            f"{name} got an empty parameter list: nothing to optimize. Did the model register "
            "its parameters (nn.Linear inside the Module, not in a plain list), or was a "
            "generator such as model.parameters() already used up?")
    if all(isinstance(p, dict) for p in params):
        return params
    return [{"params": params}]


def _listed(params, name):
    if params is None:
        return []
    try:
        return list(params)
    except TypeError:
        raise OptimizerError(f"{name}: params should be an iterable of Tensors (e.g. "
                             f"model.parameters() or [w, b]), got {type(params).__name__}") from None


def _param_list(params, name):
    if isinstance(params, Tensor):
        params = [params]
    params = _listed(params, name)
    if not params:
        raise OptimizerError(f"{name}: a parameter group has no parameters")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise OptimizerError(f"{name}: parameter {i} is a {type(p).__name__}, not a "
                                 "Tensor; pass model.parameters() or a list of tensors")
        if p.dtype.kind != "f":
            raise DTypeError(f"{name}: parameter {i} has dtype {p.dtype}; only floating "
                             "tensors can be optimized")
        if not p.is_leaf:
            raise OptimizerError(f"{name}: parameter {i} (shape {p.shape}) is not a leaf "
                                 "tensor (it was computed from others); optimize the tensors "
                                 "you created, or .detach().requires_grad_() it first")
    return params
