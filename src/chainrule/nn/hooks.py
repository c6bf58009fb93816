"""Module hooks (PyTorch's): forward pre-hooks, forward hooks and full backward hooks.

`Module.__call__` runs them around `forward` once any is registered (a module without hooks
pays one dictionary lookup). A full backward hook is built as PyTorch builds it: the module's
tensor inputs and outputs pass through two identity `autograd.Function`s; the outputs' one
records the gradients of the outputs, the inputs' one calls
`hook(module, grad_input, grad_output)` and may replace the gradients of the inputs.

Differences from PyTorch (docs/conventions.md): an output that received no gradient shows
as zeros in `grad_output` (PyTorch: None); only tensors passed positionally, and outputs that
are a tensor or a tuple/list of tensors, take part in backward hooks; global hooks
(`register_module_forward_hook`) are not provided.
"""
import itertools
from collections import OrderedDict

from ..autograd import RemovableHandle
from ..ops.function import Function
from ..tensor import Tensor

_ids = itertools.count()


def add_hook(module, store, hook, prepend=False, **flags):
    """Register `hook` in the module's dict `store` (created on first use); a handle."""
    d = module.__dict__
    hooks = d.get(store)
    if hooks is None:
        for name in ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks"):
            d.setdefault(name, OrderedDict())
        d.setdefault("_hook_flags", {})
        hooks = d[store]
    key = next(_ids)
    hooks[key] = hook
    if prepend:
        hooks.move_to_end(key, last=False)
    d["_hook_flags"][key] = flags
    d["_has_hooks"] = True
    return RemovableHandle(hooks, key)


def call(module, args, kwargs):
    """`module.forward(*args, **kwargs)` with its hooks."""
    d = module.__dict__
    flags = d["_hook_flags"]
    for key, hook in list(d["_forward_pre_hooks"].items()):
        if flags.get(key, {}).get("with_kwargs"):
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {result!r}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward_hooks = d["_backward_hooks"]
    state = None
    if backward_hooks:
        state = _BackwardState(module, backward_hooks)
        args = state.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for key, hook in list(d["_forward_hooks"].items()):
        if flags.get(key, {}).get("with_kwargs"):
            result = hook(module, args, kwargs, output)
        else:
            result = hook(module, args, output)
        if result is not None:
            output = result
    if state is not None:
        output = state.wrap_outputs(output)
    return output


class _BackwardState:
    """One call's link between its outputs' gradients and its inputs'."""

    def __init__(self, module, hooks):
        self.module, self.hooks = module, hooks
        self.grad_output = None
        self.n_inputs = 0
        self.inputs_recorded = False

    def wrap_inputs(self, args):
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(positions)
        if not positions:
            return args
        out = _InputsHook.apply(self, *[args[i] for i in positions])
        out = out if isinstance(out, tuple) else (out,)
        self.inputs_recorded = any(t.requires_grad for t in out)
        args = list(args)
        for i, t in zip(positions, out):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, output):
        if isinstance(output, Tensor):
            return _OutputsHook.apply(self, output)
        if isinstance(output, (tuple, list)) and output and all(
                isinstance(o, Tensor) for o in output):
            wrapped = _OutputsHook.apply(self, *output)
            wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
            return type(output)(wrapped)
        return output

    def call_hooks(self, grad_input):
        for hook in list(self.hooks.values()):
            result = hook(self.module, grad_input, self.grad_output)
            if result is not None:
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        f"backward hook returned an invalid number of grad_input, got "
                        f"{len(result)}, but expected {len(grad_input)}")
                grad_input = result
        return grad_input


class _Identity(Function):
    """The tensors given, unchanged, with the call's _BackwardState kept for backward."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        return tensors[0] if len(tensors) == 1 else tuple(tensors)


class _OutputsHook(_Identity):
    """Identity on a module's outputs; its backward records grad_output."""

    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        state.grad_output = grads
        if not state.inputs_recorded:   # no input needs a gradient: the hook is called now
            state.call_hooks((None,) * state.n_inputs)
        return (None,) + grads


class _InputsHook(_Identity):
    """Identity on a module's tensor inputs; its backward calls the module's backward hooks."""

    @staticmethod
    def backward(ctx, *grads):
        grads = tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad[1:]))
        return (None,) + tuple(ctx.state.call_hooks(grads))
