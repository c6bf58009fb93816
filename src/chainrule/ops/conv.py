"""Convolution and pooling: two primitives, im2col and its adjoint col2im, and the functions
built on them (conv2d, max_pool2d, avg_pool2d).

im2col turns an image batch (N, C, H, W) into its sliding windows, laid out (N, oh, ow, C, kh,
kw) (or (N, C, kh, kw, oh, ow) for conv2d, whose copy then runs along image rows), with one
strided view of the padded array (no Python loop over pixels). A convolution is then a
matrix product per image (conv2d_gemm: weights (O, C·kh·kw) times windows (C·kh·kw, oh·ow),
giving NCHW output directly), so BLAS does the work; its gradient comes from the product's rules plus col2im, which adds each
window's gradient back onto the pixels it was copied from. The two primitives are each
other's VJP (both are linear), so second derivatives work as well.
"""
from .. import backend
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from . import fused
from .elementwise import where
from .linalg import MATMUL
from .reductions import SUM
from .registry import Primitive, apply, as_tensor
from .shape import TRANSPOSE

np = backend.np
GEOMETRY_HINT = ("Each spatial size must fit at least one window: "
                 "H + 2·padding ≥ dilation·(kernel - 1) + 1.")


def out_size(n, k, s, p, d):
    """Output length along one axis: ⌊(n + 2p - d(k - 1) - 1) / s⌋ + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _windows(x, kernel, stride, padding, dilation, pad_value, channels_first=False):
    """A read-only strided view (N, oh, ow, C, kh, kw) of the padded x, or (N, C, kh, kw, oh,
    ow) with channels_first (convolution's layout: its copy runs along image rows, measured
    6x faster to gather from NCHW, bench/NOTES.md)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {kh}x{kw} window (dilation {dh}x{dw}, padding {ph}x{pw}) does not "
                         f"fit a {h}x{w} image")
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    s0, s1, s2, s3 = x.strides
    if channels_first:
        return _as_strided(x, (n, c, kh, kw, oh, ow),
                           (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw))
    return _as_strided(x, (n, oh, ow, c, kh, kw), (s0, s2 * sh, s3 * sw, s1, s2 * dh, s3 * dw))


def _as_strided(x, shape, strides):
    """A strided view of x in its own array module, read-only on the host (CuPy's
    as_strided has no `writeable`)."""
    if type(x) is np.ndarray:
        return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)
    return backend.xp_of(x).lib.stride_tricks.as_strided(x, shape, strides)


def _im2col_forward(x, kernel, stride, padding, dilation, pad_value=0.0, channels_first=False):
    windows = _windows(x, kernel, stride, padding, dilation, pad_value, channels_first)
    return backend.xp_of(x).ascontiguousarray(windows)


def _col2im_forward(cols, x_shape, kernel, stride, padding, dilation, channels_first=False):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x_shape
    if channels_first:
        return _col2im_channels_first(cols, x_shape, kernel, stride, padding, dilation)
    oh, ow = cols.shape[1], cols.shape[2]
    # channels last, like cols
    out = backend.xp_of(cols).zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
    for i in range(kh):          # a loop over the kernel's positions, not over pixels
        for j in range(kw):
            r, q = i * dh, j * dw
            out[:, r:r + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += cols[..., i, j]
    out = out[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
    return backend.xp_of(out).ascontiguousarray(out)


def _col2im_channels_first(cols, x_shape, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x_shape
    oh, ow = cols.shape[4], cols.shape[5]
    out = backend.xp_of(cols).zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            r, q = i * dh, j * dw
            out[:, :, r:r + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += cols[:, :, i, j]
    if ph or pw:
        out = backend.xp_of(out).ascontiguousarray(out[:, :, ph:ph + h, pw:pw + w])
    return out


# The two are each other's VJP: both are linear.
def _im2col_rule(g, y, x, kernel, stride, padding, dilation, pad_value=0.0,
                 channels_first=False):
    return COL2IM(g, x_shape=x.shape, kernel=kernel, stride=stride, padding=padding,
                  dilation=dilation, channels_first=channels_first)


def _col2im_rule(g, y, cols, x_shape, kernel, stride, padding, dilation, channels_first=False):
    return IM2COL(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                  channels_first=channels_first)


IM2COL = Primitive(
    "im2col", _im2col_forward, [_im2col_rule],
    formula="windows(x): every kh×kw patch of x, side by side",
    derivs=["1 per copy (the backward adds each window's gradient back: col2im)"], saves=(),
    linear=True, hint=GEOMETRY_HINT, layer_role="windows")
COL2IM = Primitive(
    "col2im", _col2im_forward, [_col2im_rule],
    formula="Σ over windows: each patch added back onto its pixels",
    derivs=["1 (the backward cuts the gradient into windows: im2col)"], saves=(),
    linear=True, hint=GEOMETRY_HINT)


# ---- the convolution's matrix product, in NCHW order ----
# out[n] = W · cols[n] (+ b): one GEMM per image, written straight into (N, O, oh·ow), so the
# output is NCHW-contiguous and the next im2col, ReLU or pool reads it in order. (Through
# `linear` the product came out (N·oh·ow, O): channels last, permuted to NCHW as a strided
# view that every later op gathered across; measured in bench/NOTES.md.)
def _gemm_forward(cols, w, b=None):
    out = np.matmul(w, cols)                # cols (N, K, L): channels-first windows
    if b is not None:
        if b.dtype == out.dtype:
            out += b[:, None]            # out is fresh: in place is safe
        else:
            out = out + b[:, None]
    return out


def _gemm_grad_cols(g, y, cols, w, b=None):        # (K, O) @ (N, O, L) -> (N, K, L)
    return MATMUL(TRANSPOSE(w, axes=(1, 0)), g)


def _gemm_grad_w(g, y, cols, w, b=None):           # Σₙ g[n] @ cols[n]ᵀ -> (O, K)
    return SUM(MATMUL(g, TRANSPOSE(cols, axes=(0, 2, 1))), axes=(0,), keepdims=False)


def _gemm_grad_b(g, y, cols, w, b=None):
    return SUM(g, axes=(0, 2), keepdims=False)


CONV_GEMM = Primitive(
    "conv2d_gemm", _gemm_forward, [_gemm_grad_cols, _gemm_grad_w, _gemm_grad_b],
    inputs=("cols", "W", "b"), formula="W @ cols + b, per image",
    derivs=["W (Wᵀ @ g)", "cols (Σ over images of g @ colsᵀ)",
            "1 (g summed over images and pixels)"], saves=("inputs",),
    layer_role="convolution", hint="cols must be (N, K, L) windows, W (O, K) and b (O,).")


def _pair(v, what):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {v}")
    return v


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, pad_value=0.0,
           channels_first=False):
    """Sliding windows of x (N, C, H, W) as (N, oh, ow, C, kh, kw), or as (N, C, kh, kw, oh,
    ow) with channels_first.

    >>> import chainrule as cr
    >>> im2col(cr.ones(1, 3, 5, 5), 2, stride=2).shape
    (1, 2, 2, 3, 2, 2)
    """
    x = as_tensor(x)
    if x.ndim != 4:
        raise ShapeError(f"im2col: needs input (N, C, H, W), got shape {tuple(x.shape)}")
    return apply(IM2COL, (x,), kernel=_pair(kernel_size, "kernel_size"),
                 stride=_pair(stride, "stride"), padding=_pair(padding, "padding"),
                 dilation=_pair(dilation, "dilation"), pad_value=pad_value,
                 channels_first=channels_first)


def float_input(x, op):
    """`x` as a floating Tensor, or a DTypeError saying how to convert it.

    >>> import chainrule as cr
    >>> float_input(cr.tensor([1.0]), "my_op").dtype
    dtype('float32')
    >>> float_input(cr.tensor([1]), "my_op")
    Traceback (most recent call last):
        ...
    chainrule.errors.DTypeError: my_op: got a tensor of dtype int64 (shape (1,)), but it needs ...
    """
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: got a tensor of dtype {x.dtype} (shape {tuple(x.shape)}), but "
                         "it needs floating-point values; convert it with x.float() (or "
                         "x.astype(cr.float32)).")
    return x


def _batched(x, op):
    """(N, C, H, W) as is; an unbatched (C, H, W) gets a batch axis (removed afterwards)."""
    x = float_input(x, op)
    if x.ndim == 3:
        return x.unsqueeze(0), True
    if x.ndim != 4:
        raise ShapeError(f"{op}: needs input of shape (N, C, H, W) or (C, H, W), got "
                         f"{tuple(x.shape)}; reshape flat images, e.g. x.reshape(-1, 1, 28, 28).")
    return x, False


def _same_padding(kernel, dilation, stride):
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    if stride != (1, 1) or any(t % 2 for t in total):
        raise ValueError("padding='same' needs stride 1 and an odd effective kernel size; give "
                         "the padding as numbers instead")
    return tuple(t // 2 for t in total)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation (PyTorch's conv2d): x (N, C, H, W), weight (O, C/groups, kh, kw),
    bias (O,). padding may be an int, a pair, 'valid' or 'same'.

    >>> import chainrule as cr
    >>> conv2d(cr.ones(1, 1, 4, 4), cr.ones(2, 1, 3, 3), padding=1).shape
    (1, 2, 4, 4)
    """
    x, unbatched = _batched(x, "conv2d")
    o, cg, kh, kw = weight.shape
    n, c, h, w = x.shape
    if c != cg * groups or o % groups:
        raise ShapeError(f"conv2d: input has {c} channels but the weight {tuple(weight.shape)} "
                         f"with groups={groups} expects {cg * groups} (and out channels {o} "
                         "divisible by groups); check in_channels.")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        padding = _same_padding((kh, kw), dilation, stride)
    padding = _pair(padding, "padding")
    k = cg * kh * kw
    if groups == 1:   # a GEMM per image, (O, C·kh·kw) @ (C·kh·kw, oh·ow): NCHW out
        cols = im2col(x, (kh, kw), stride, padding, dilation, channels_first=True)
        oh, ow = cols.shape[4], cols.shape[5]
        inputs = (cols.reshape(n, k, oh * ow), weight.reshape(o, k))
        out = apply(CONV_GEMM, inputs if bias is None else inputs + (as_tensor(bias),))
        out = out.reshape(n, o, oh, ow)
        return out.squeeze(0) if unbatched else out
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    oh, ow = cols.shape[1], cols.shape[2]
    # groups > 1: a batch of G GEMMs, one per group
    grouped = cols.reshape(n * oh * ow, groups, k).transpose(1, 0, 2)
    out = grouped @ weight.reshape(groups, o // groups, k).mT
    out = out.transpose(1, 0, 2).reshape(n * oh * ow, o)
    if bias is not None:
        out = out + bias
    out = out.reshape(n, oh, ow, o).permute(0, 3, 1, 2)
    return out.squeeze(0) if unbatched else out


def _pool_windows(x, kernel_size, stride, padding, dilation, pad_value, op):
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel {kernel}")
    return im2col(x, kernel, stride, padding, dilation, pad_value), kernel, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Largest value in each window (stride defaults to the kernel size). The gradient goes
    to the first largest entry of a window, as in PyTorch.

    >>> import chainrule as cr
    >>> max_pool2d(cr.arange(16.0).reshape(1, 1, 4, 4), 2).reshape(-1).tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    if ceil_mode:
        raise NotImplementedError("max_pool2d: ceil_mode=True is not supported; pad instead")
    x, unbatched = _batched(x, "max_pool2d")
    k = _pair(kernel_size, "kernel_size")
    if (k[0] == k[1] <= min(x.shape[2:]) and stride in (None, kernel_size, k)
            and _pair(padding, "padding") == (0, 0) and _pair(dilation, "dilation") == (1, 1)):
        out = fused.max_pool2d(x, k[0])   # one primitive, measured faster (bench/NOTES.md)
        return out.squeeze(0) if unbatched else out
    cols = _pool_windows(x, kernel_size, stride, padding, dilation, -np.inf, "max_pool2d")[0]
    n, oh, ow, c, kh, kw = cols.shape
    cols = cols.reshape(n, oh, ow, c, kh * kw)
    first = _max_index(cols._data)[..., None]
    mask = backend.xp_of(first).arange(kh * kw) == first
    out = where(mask, cols, 0.0).sum(-1)   # where, not mask·cols: padding holds -inf
    out = out.permute(0, 3, 1, 2)
    return out.squeeze(0) if unbatched else out


def _max_index(windows):
    """Each window's (last axis) first largest entry; NOTE: a nan is the largest, and the
    last nan of a window keeps the gradient (PyTorch's choice; np.argmax takes the first)."""
    index = np.argmax(windows, axis=-1)
    nan = np.isnan(windows)
    if nan.any():
        last = windows.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
        index = np.where(nan.any(axis=-1), last, index)
    return index


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean of each window; padded zeros count unless count_include_pad=False (PyTorch).

    >>> import chainrule as cr
    >>> x = cr.ones(1, 1, 2, 2, requires_grad=True)
    >>> y = avg_pool2d(x, 2, stride=1, padding=1)
    >>> y.reshape(-1).tolist()
    [0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]
    >>> avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False).reshape(-1).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    if ceil_mode:
        raise NotImplementedError("avg_pool2d: ceil_mode=True is not supported; pad instead")
    x, unbatched = _batched(x, "avg_pool2d")
    cols, kernel, stride, padding = _pool_windows(x, kernel_size, stride, padding, 1, 0.0,
                                                  "avg_pool2d")
    total = cols.sum((4, 5)).permute(0, 3, 1, 2)
    if count_include_pad or padding == (0, 0):
        out = total * (1.0 / (kernel[0] * kernel[1]))
    else:
        ones = backend.xp_of(x._data).ones((1, 1) + x.shape[2:], dtype=x.dtype)
        counts = _windows(ones, kernel, stride, padding, (1, 1), 0.0).sum((4, 5))
        out = total / Tensor._wrap(counts.transpose(0, 3, 1, 2))
    return out.squeeze(0) if unbatched else out
