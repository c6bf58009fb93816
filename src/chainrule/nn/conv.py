"""Convolution and pooling layers (the maths is in ops/conv.py: im2col + one matrix product)."""
from .. import ops
from . import init
from ..ops import conv as conv_ops
from .layers import check_features, empty_parameter, place
from .module import Module


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) with weight (out, in/groups, kh, kw) and PyTorch's
    default init; stride, padding (int, pair, 'valid', 'same'), dilation and groups.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
    >>> conv.weight.shape, conv(cr.ones(2, 1, 8, 8)).shape
    ((4, 1, 3, 3), (2, 4, 8, 8))
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=None, device=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = conv_ops._pair(kernel_size, "kernel_size")
        self.stride = conv_ops._pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else conv_ops._pair(padding, "padding")
        self.dilation = conv_ops._pair(dilation, "dilation")
        kh, kw = self.kernel_size
        self.weight = empty_parameter((out_channels, in_channels // groups, kh, kw), dtype)
        if bias:
            self.bias = empty_parameter((out_channels,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        place(self, device)

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        x = ops.as_tensor(x)
        check_features(self, x, self.in_channels, -3, "channels",
                       "(input (N, C, H, W); reshape flat images, e.g. x.reshape(-1, 1, 28, 28))")
        return conv_ops.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                               self.dilation, self.groups)

    def _short(self):
        return f"{self.in_channels}->{self.out_channels}, {self.kernel_size[0]}x{self.kernel_size[1]}"

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    """Largest value of each window (stride defaults to the kernel size).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> x = cr.arange(16.0).reshape(1, 1, 4, 4)
    >>> nn.MaxPool2d(2)(x).reshape(-1).tolist()
    [5.0, 7.0, 13.0, 15.0]
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation

    def forward(self, x):
        return conv_ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode=False")


class AvgPool2d(Module):
    """Mean of each window (stride defaults to the kernel size).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> x = cr.arange(16.0).reshape(1, 1, 4, 4)
    >>> nn.AvgPool2d(2)(x).reshape(-1).tolist()
    [2.5, 4.5, 10.5, 12.5]
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.count_include_pad = padding, count_include_pad

    def forward(self, x):
        return conv_ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding,
                                   count_include_pad=self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
