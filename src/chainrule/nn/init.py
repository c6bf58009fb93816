"""Weight initialisation (PyTorch's names and formulas), drawing from chainrule's generator,
so `cr.manual_seed(n)` makes every model reproducible (or from `generator=`, a cr.Generator,
as in PyTorch). Each function fills its tensor in place (outside the graph) and returns it.
A tensor on a device is filled with numbers drawn on the host: the same as on the CPU.
"""
import math

import numpy as np

from .. import backend
from ..errors import ShapeError


def _fill(tensor, values):
    data = tensor._data
    # NOTE: drawn on the host on every device (so a seed gives the same weights), copied
    data[...] = backend.beside(values, data)
    tensor._version += 1
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The gain that keeps activations' variance steady through `nonlinearity`.

    >>> round(calculate_gain("relu"), 4)
    1.4142
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "identity")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of "
                     f"{', '.join(linear + ('tanh', 'relu', 'leaky_relu', 'selu'))}")


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight: Linear (out, in); Conv (out, in/groups, kh, kw).

    >>> import chainrule as cr
    >>> calculate_fan_in_and_fan_out(cr.zeros(4, 3, 2, 2))
    (12, 16)
    """
    shape = tensor.shape
    if len(shape) < 2:
        raise ShapeError(f"init: fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> [round(v, 4) for v in uniform_(cr.zeros(3), -1.0, 1.0).tolist()]
    [0.2739, -0.4604, -0.9181]
    """
    return _fill(tensor, backend.rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std²).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> w = normal_(cr.zeros(10000), mean=2.0, std=0.5)
    >>> round(float(w.numpy().mean()), 1), round(float(w.numpy().std()), 1)
    (2.0, 0.5)
    """
    return _fill(tensor, backend.rng(generator).normal(mean, std, tensor.shape))


def constant_(tensor, value):
    """Fill with `value`.

    >>> import chainrule as cr
    >>> constant_(cr.zeros(2), 0.5).tolist()
    [0.5, 0.5]
    """
    return _fill(tensor, value)


def zeros_(tensor):
    """Fill with 0.

    >>> import chainrule as cr
    >>> zeros_(cr.ones(2)).tolist()
    [0.0, 0.0]
    """
    return _fill(tensor, 0)


def ones_(tensor):
    """Fill with 1.

    >>> import chainrule as cr
    >>> ones_(cr.zeros(2)).tolist()
    [1.0, 1.0]
    """
    return _fill(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot: U(-b, b) with b = gain·√(6 / (fan_in + fan_out)).

    >>> import chainrule as cr
    >>> w = xavier_uniform_(cr.zeros(30, 20))
    >>> bool(abs(w.numpy()).max() <= (6 / 50) ** 0.5)
    True
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot: N(0, std²) with std = gain·√(2 / (fan_in + fan_out)).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> w = xavier_normal_(cr.zeros(200, 300))
    >>> round(float(w.numpy().std()), 3), round((2 / 500) ** 0.5, 3)
    (0.063, 0.063)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He: U(-b, b) with b = gain·√(3 / fan), gain from `nonlinearity` (slope `a`).
    With a=√5 this is PyTorch's default Linear/Conv weight init, b = 1/√fan_in.

    >>> import chainrule as cr
    >>> w = kaiming_uniform_(cr.zeros(50, 24), nonlinearity="relu")
    >>> bool(abs(w.numpy()).max() <= 2 ** 0.5 * (3 / 24) ** 0.5)
    True
    """
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He: N(0, std²) with std = gain / √fan.

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> w = kaiming_normal_(cr.zeros(256, 128), nonlinearity="relu")
    >>> round(float(w.numpy().std()), 3), (2 / 128) ** 0.5
    (0.125, 0.125)
    """
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(_fan(tensor, mode)), generator)


def default_layer_init_(weight, bias=None):
    """PyTorch's init for Linear and Conv: kaiming_uniform(a=√5) on the weight (U(±1/√fan_in))
    and U(±1/√fan_in) on the bias.

    >>> import chainrule as cr
    >>> w, b = cr.zeros(3, 4), cr.zeros(3)
    >>> default_layer_init_(w, b)
    >>> bool(abs(w.numpy()).max() <= 0.5 and abs(b.numpy()).max() <= 0.5)
    True
    """
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
