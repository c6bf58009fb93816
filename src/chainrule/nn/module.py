"""Module: the base class of layers and models, and the containers Sequential and ModuleList.

A module registers what is assigned to it: a Parameter goes to `_parameters`, a Module to
`_modules`, a tensor named by `register_buffer` to `_buffers`. Names follow PyTorch, so a
`state_dict` moves between chainrule and PyTorch by key. Every module also knows where it sits
in its tree (`_qualname`, e.g. "2" or "encoder.fc1"), so layer errors can say
"Sequential.2 (Linear 128->10) got input with 64 features".
"""
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..errors import CheckpointError
from ..tensor import Tensor
from . import hooks as _hooks
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class: subclass it, assign layers and Parameters in `__init__`, write `forward`.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(2, 3)
    ...         self.fc2 = nn.Linear(3, 1)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    >>> net(cr.ones(4, 2)).shape
    (4, 1)
    """

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["training"] = True
        d["_qualname"] = ""          # path below the root ("" for the root itself)
        d["_root_label"] = type(self).__name__

    # ----- registration -----
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning {name!r} in __init__")
        if isinstance(value, Parameter):
            self._forget(name, "_parameters")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self._forget(name, "_modules")
            self.add_module(name, value)
        elif name in d["_parameters"] or name in d["_modules"]:
            store = "_parameters" if name in d["_parameters"] else "_modules"
            if value is not None:
                kind = "an nn.Parameter" if store == "_parameters" else "a Module"
                raise TypeError(f"{type(self).__name__}.{name} is registered as {kind}; "
                                f"assign {kind} or None, not {type(value).__name__} (wrap a "
                                "tensor as nn.Parameter(t), or del the attribute first)")
            d[store][name] = None
        elif name in d["_buffers"]:
            d["_buffers"][name] = _as_buffer(value, name)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep):
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                self.__dict__[store].pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            table = d.get(store)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[store]:
                del self.__dict__[store][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register `param` (a Parameter, or None for an absent one such as bias=False)."""
        _check_name(name)
        self.__dict__.pop(name, None)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected an nn.Parameter or None, "
                            f"got {type(param).__name__}; wrap it as nn.Parameter(tensor)")
        self._parameters[name] = param
        if param is not None:
            _auto_name(param, self._qualname + ("." if self._qualname else "") + name)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not trained (e.g. BatchNorm's running mean); it is in
        `state_dict()` unless persistent=False."""
        _check_name(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = _as_buffer(tensor, name)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Register a child module under `name` (what `self.name = module` does)."""
        _check_name(name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): {type(module).__name__} is not a Module")
        self.__dict__.pop(name, None)
        self._modules[name] = module
        if module is not None:
            prefix = self._qualname + "." if self._qualname else ""
            module._place(prefix + name, self._root_label)

    register_module = add_module

    def _place(self, qualname, root_label):
        """Record where this module (and its subtree) sits; name parameters after it."""
        for path, m in self.named_modules():
            full = qualname + ("." + path if path else "")
            m.__dict__["_qualname"] = full
            m.__dict__["_root_label"] = root_label
            for pname, p in m._parameters.items():
                if p is not None:
                    _auto_name(p, full + "." + pname)

    def layer_path(self):
        """How errors name this module: 'Sequential.2 (Linear 128->10)' or 'Linear 128->10'."""
        label = type(self).__name__ + (" " + self._short() if self._short() else "")
        if not self._qualname:
            return label
        return f"{self._root_label}.{self._qualname} ({label})"

    def _short(self):
        """A few words for errors, e.g. '128->10'; subclasses override."""
        return ""

    # ----- traversal -----
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix="", memo=None):
        """(path, module) for this module and every descendant, each once, parents first."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            path, m = stack.pop()
            if id(m) in memo:
                continue
            memo.add(id(m))
            yield path, m
            kids = [(path + ("." if path else "") + n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """(qualified name, Parameter) pairs, each parameter once (shared ones too)."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for path, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield path + ("." if path else "") + name, p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for path, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield path + ("." if path else "") + name, b

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call `fn(module)` on every submodule and then on self (PyTorch's order)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ----- modes and gradients -----
    def train(self, mode=True):
        """Training mode (Dropout drops, BatchNorm uses batch statistics)."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """Evaluation mode: same as train(False)."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of all parameters (set them to None, as PyTorch does)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor._wrap(np.zeros_like(p.grad._data))

    def num_parameters(self):
        """How many numbers the model trains."""
        return int(sum(p._data.size for p in self.parameters()))

    def to(self, *args, dtype=None, device=None, non_blocking=False):
        """Move parameters and buffers to a device and/or convert the floating ones to a
        dtype, in place, as PyTorch: `model.to("cuda")`, `model.to(cr.float64)`,
        `model.to("check", cr.float64)`, `model.to(tensor)` (its device and dtype). The
        Parameter objects stay the same (their arrays and gradients are replaced), so an
        optimizer made before keeps working; its state follows on the next step.

        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> layer = nn.Linear(2, 1)
        >>> w = layer.weight
        >>> _ = layer.to("check", cr.float64)
        >>> layer.weight is w, str(w.device), w.dtype
        (True, 'check:0', dtype('float64'))
        """
        op = f"{type(self).__name__}.to"
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif _names_device(a):
                device = a
            elif isinstance(a, (bool, np.bool_)):
                continue   # PyTorch's positional non_blocking
            else:
                dtype = a
        dev = None if device is None else backend.check_device(device, op)
        dtype = None if dtype is None else backend.as_dtype(dtype, op)
        if dev is None and dtype is None:
            return self
        for t in list(self.parameters()) + list(self.buffers()):
            _move(t, dev, dtype)
        if dev is not None:
            from ..optim.optimizer import note_move
            note_move()
        return self

    def cuda(self, device=None):
        """Move parameters and buffers to a CUDA device (`device`: an index or name; default
        the current one), in place."""
        if device is None:
            device = "cuda"
        elif isinstance(device, (int, np.integer)) and not isinstance(device, bool):
            device = f"cuda:{int(device)}"
        return self.to(device)

    def cpu(self):
        """Move parameters and buffers to the CPU, in place."""
        return self.to("cpu")

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ----- state -----
    def state_dict(self, prefix=""):
        """name -> detached Tensor for every parameter and persistent buffer. The tensors
        share memory with the module (as in PyTorch); copy them to keep a snapshot."""
        out = OrderedDict()
        for path, m in self.named_modules(prefix):
            lead = path + ("." if path else "")
            for name, p in m._parameters.items():
                if p is not None:
                    out[lead + name] = p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[lead + name] = b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from `state_dict` (Tensors, NumPy arrays, or PyTorch tensors) into this
        module's parameters and buffers, in place.

        Raises CheckpointError listing every missing, unexpected and mis-shaped key at once
        (missing/unexpected are allowed with strict=False). Returns (missing, unexpected).
        """
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(f"load_state_dict into {type(self).__name__}: expected a "
                                  f"mapping of names to tensors, got {type(state_dict).__name__}"
                                  "; pass model.state_dict() or cr.load(path).")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        arrays, mis_shaped = {}, []
        for key, target in targets.items():
            if key in state_dict:
                arr = _to_numpy(state_dict[key])
                if arr.shape != target.shape:
                    mis_shaped.append(f"{key}: checkpoint {tuple(arr.shape)}, "
                                      f"model {tuple(target.shape)}")
                arrays[key] = arr
        problems = []
        if mis_shaped:
            problems.append("shape mismatch for " + "; ".join(mis_shaped))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)))
        if problems:
            raise CheckpointError(
                f"load_state_dict into {type(self).__name__}: " + " | ".join(problems) +
                ". The checkpoint was saved from a different architecture (compare "
                "model.state_dict().keys() with the file's), or pass strict=False to load the "
                "keys that match.")
        for key, arr in arrays.items():
            t = targets[key]
            np.copyto(t._data, backend.beside(arr, t._data), casting="unsafe")   # onto t's device
            t._version += 1
        return IncompatibleKeys(missing, unexpected)

    def _state_targets(self):
        """The tensors `state_dict()` would return, by key (the live objects, not copies)."""
        targets = OrderedDict()
        for path, m in self.named_modules():
            lead = path + ("." if path else "")
            for name, p in m._parameters.items():
                if p is not None:
                    targets[lead + name] = p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    targets[lead + name] = b
        return targets

    # ----- calling and printing -----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define "
                                  "forward(self, x) in the subclass")

    def __call__(self, *args, **kwargs):
        if "_has_hooks" in self.__dict__:
            return _hooks.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ----- hooks (PyTorch's; nn/hooks.py) -----
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Call `hook(module, args)` before each forward; a non-None result replaces args
        (with_kwargs=True: `hook(module, args, kwargs)` returning (args, kwargs)). Returns a
        handle whose `.remove()` unregisters it."""
        return _hooks.add_hook(self, "_forward_pre_hooks", hook, prepend,
                               with_kwargs=with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """Call `hook(module, args, output)` after each forward; a non-None result replaces
        the output (with_kwargs=True: `hook(module, args, kwargs, output)`).

        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> seen = []
        >>> layer = nn.Linear(2, 3)
        >>> handle = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
        >>> _ = layer(cr.ones(4, 2)); handle.remove(); _ = layer(cr.ones(1, 2))
        >>> seen
        [(4, 3)]
        """
        return _hooks.add_hook(self, "_forward_hooks", hook, prepend, with_kwargs=with_kwargs)

    def register_full_backward_hook(self, hook, prepend=False):
        """Call `hook(module, grad_input, grad_output)` when the gradients of the module's
        inputs are computed (tuples, one entry per positional tensor input/output; None for an
        input that needs none); a non-None result replaces grad_input."""
        return _hooks.add_hook(self, "_backward_hooks", hook, prepend)

    register_backward_hook = register_full_backward_hook

    def extra_repr(self):
        """The text inside the parentheses of this module's repr (subclasses override)."""
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"\n  {extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))


def _check_name(name):
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"module attribute name must be a non-empty string without '.', "
                       f"got {name!r}")


def _auto_name(param, qualname):
    if param.name is None or getattr(param, "_auto_name", False):
        param.name = qualname
        param._auto_name = True


def _as_buffer(value, name):
    if value is None or isinstance(value, Tensor):
        return value
    dtype = value.dtype if backend.is_array(value) else None   # a device array keeps its own
    return Tensor._wrap(backend.to_array(value, dtype))


def _names_device(a):
    """Whether a positional argument of `Module.to` is a device (else it is a dtype)."""
    if isinstance(a, str):
        return a.split(":")[0] in backend.DEVICE_TYPES + ("mps",)
    if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
        return True    # PyTorch: a CUDA index
    return isinstance(a, backend.device) or type(a).__name__ == "device"


def _move(t, dev, dtype):
    """Put `t`'s array (and its gradient's) on `dev` and, for floating ones, in `dtype`
    (either None: unchanged), replacing the arrays so that `t` keeps its identity."""
    def moved(a):
        if dtype is not None and a.dtype.kind == "f" and a.dtype != dtype:
            a = a.astype(dtype)
        return a if dev is None else backend.to_device(a, dev)
    t._data = moved(t._data)
    if t.grad is not None:
        t.grad = Tensor._wrap(moved(t.grad._data))


def _to_numpy(value):
    """A state-dict entry as an array (a host or device one; copied later onto the target)."""
    if isinstance(value, Tensor):
        return value._data
    if backend.is_array(value):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):   # a PyTorch tensor, duck-typed
        return value.detach().cpu().numpy()
    return np.asarray(value)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... (PyTorch's keys).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> model(cr.ones(1, 2)).shape
    (1, 2)
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules, registered so their parameters are found (children "0", "1", ...).

    >>> from chainrule import nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    >>> len(list(layers.parameters()))
    6
    """

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, index):
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])
        return values[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """Modules by name, registered so their parameters are found (children named by their
    keys, in insertion order), PyTorch's `nn.ModuleDict`.

    >>> from chainrule import nn
    >>> heads = nn.ModuleDict({"digit": nn.Linear(4, 10), "parity": nn.Linear(4, 2)})
    >>> list(heads.keys()), list(heads.state_dict())[:2]
    (['digit', 'parity'], ['digit.weight', 'digit.bias'])
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        """Add (or replace) modules from a mapping or an iterable of (name, module) pairs."""
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for key, module in pairs:
            self[key] = module

    def pop(self, key):
        module = self._modules[key]
        del self[key]
        return module

    def clear(self):
        self._modules.clear()
