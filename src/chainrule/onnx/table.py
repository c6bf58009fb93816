"""How each primitive is written in ONNX: the one table, keyed by primitive name.

`EXPORTS[name](view)` writes the ONNX nodes for one recorded node and returns the ONNX value
of its output (`view` is a graph.NodeView: inputs as ONNX values, parameters checked across
traces, producers, the builder). `NOT_EXPORTED` says, for every other primitive of
`chainrule.ops.REGISTRY`, why it has no translation; a test checks that the two together
cover the registry, so a new primitive cannot be forgotten here. The registry itself stays
free of ONNX: what a primitive becomes in ONNX is a fact about export, kept beside it.

Everything a forward of chainrule's layers records is here. Composites (softmax, layer norm,
batch norm in eval mode, GELU, mean, var, the LSTM cell) export as the primitives they are
made of; Conv2d's im2col -> reshape -> conv2d_gemm becomes one ONNX Conv.
"""
from .. import backend
from ..ops.conv import out_size
from .graph import INT64_MAX, INT64_MIN, onnx_dtype

np = backend.np


# ---------------------------------------------------------------- elementwise

def _unary(op_type):
    def export(v):
        return v.b.op(op_type, [v.x(0)])
    export.onnx = op_type
    return export


def _as(v, k, dtype):
    """Input k as an ONNX value of `dtype` (a Cast where NumPy promoted it)."""
    value = v.x(k)
    if v.dtype(k) != dtype:
        value = v.b.op("Cast", [value], to=onnx_dtype(dtype))
    return value


def _binary(op_type):
    def export(v):
        return v.b.op(op_type, [_as(v, 0, v.out.dtype), _as(v, 1, v.out.dtype)])
    export.onnx = op_type
    return export


def _pow(v):
    return v.b.op("Pow", [_as(v, 0, v.out.dtype), v.x(1)])


def _clip(v):
    b, dtype = v.b, v.dtype(0)
    lo, hi = v.param("lo"), v.param("hi")
    bounds = [b.scalar(lo, dtype) if lo is not None else "",
              b.scalar(hi, dtype) if hi is not None else ""]
    while bounds and bounds[-1] == "":
        bounds.pop()
    return b.op("Clip", [v.x(0)] + bounds)


def _where(v):
    cond = v.array_param("cond")
    return v.b.op("Where", [cond, _as(v, 0, v.out.dtype), _as(v, 1, v.out.dtype)])


def _cast(v):
    return v.b.op("Cast", [v.x(0)], to=onnx_dtype(v.param("dtype")))


def _to_device(v):
    return v.b.op("Identity", [v.x(0)])   # a model file has no devices: the runtime places it


# ---------------------------------------------------------------- reductions

def _reduce(op_type):
    def export(v):
        axes, keepdims = v.param("axes"), v.param("keepdims")
        if not axes:            # nothing to reduce (ONNX would reduce every axis)
            return v.x(0)
        return v.b.reduce(op_type, v.x(0), axes, keepdims)
    export.onnx = op_type
    return export


# ---------------------------------------------------------------- shapes

def _reshape(v):
    b, x = v.b, v.x(0)
    source = b.reshaped.get(x)
    if source is not None and source[1] == tuple(v.out.shape):
        return source[0]                 # a reshape back: the value before the first one
    dims = v.dims("shape")
    zero = any(d == 0 for d in dims if isinstance(d, int))
    if zero and b.opset < 14:
        v.fail("a reshape to a shape with a 0 entry needs opset 14 or later.")
    return b.reshape(x, b.shape_value(dims, like=v.in_dims(0)), source_shape=v.shape(0),
                     allowzero=zero)


def _transpose(v):
    pool = _as_max_pool(v)
    if pool is not None:
        return pool
    return v.b.op("Transpose", [v.x(0)], perm=[int(a) for a in v.param("axes")])


def _as_max_pool(v):
    """The general max-pool, where(first maximum, reshape(im2col(x, pad -inf)), 0).sum(-1)
    permuted to NCHW, -> one MaxPool (the where's mask checked in every trace)."""
    if tuple(v.params["axes"]) != (0, 3, 1, 2):
        return None
    total = v.producer(0)
    if total is None or total.name != "sum" or tuple(total.params["axes"]) != (4,) or \
            total.params["keepdims"]:
        return None
    pick = total.producer(0)
    if pick is None or pick.name != "where" or pick.producer(1) is not None:
        return None
    windows = pick.producer(0)
    im = windows.producer(0) if windows is not None and windows.name == "reshape" else None
    if (im is None or im.name != "im2col" or im.params.get("channels_first")
            or im.params.get("pad_value") != -np.inf):
        return None
    for twin, zero in zip(pick.twins, [t.inputs[1]._data for t in pick.twins]):
        cols = twin.inputs[0]._data
        first = np.arange(cols.shape[-1]) == np.argmax(cols, axis=-1)[..., None]
        if np.any(zero != 0) or not np.array_equal(twin.params["cond"], first):
            return None
    (ph, pw) = im.param("padding")
    return v.b.op("MaxPool", [im.x(0)], kernel_shape=list(im.param("kernel")),
                  strides=list(im.param("stride")), pads=[ph, pw, ph, pw],
                  dilations=list(im.param("dilation")))


def _expand(v):
    return v.b.op("Expand", [v.x(0), v.b.shape_value(v.dims("shape"), infer=False)])


def _concatenate(v):
    dtype = v.out.dtype
    return v.b.op("Concat", [_as(v, k, dtype) for k in range(v.n_inputs)],
                  axis=int(v.param("axis")))


def _getitem(v):
    index = v.params["index"]
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [i for i, p in enumerate(parts) if isinstance(p, np.ndarray)]
    if not arrays:
        return _basic_index(v, v.param("index"))
    if len(arrays) > 1 or any(not (p is Ellipsis or _full(p)) for i, p in enumerate(parts)
                              if i != arrays[0]):
        v.fail(f"indexing with {_describe(parts)} is not exported; export takes basic "
               "indices (ints, slices, None, ...) or one integer array with full slices "
               "elsewhere (x[idx], x[:, idx]: Gather).")
    pos = arrays[0]
    ndim = len(v.shape(0))
    taken = sum(1 for p in parts if p is not Ellipsis)
    axis = sum(ndim - taken + 1 if p is Ellipsis else 1 for p in parts[:pos])
    twins = [t.params["index"] for t in v.twins]
    idx = v.array_param("index", [t if not isinstance(t, tuple) else t[pos] for t in twins])
    if parts[pos].dtype not in (np.int32, np.int64):
        idx = v.b.op("Cast", [idx], to=onnx_dtype(np.int64))
    return v.b.op("Gather", [v.x(0), idx], axis=axis)


def _full(p):
    return isinstance(p, slice) and p.start is None and p.stop is None and p.step in (None, 1)


def _describe(parts):
    return "[" + ", ".join(f"array{p.shape}" if isinstance(p, np.ndarray) else
                           "..." if p is Ellipsis else repr(p) for p in parts) + "]"


def _basic_index(v, index):
    """x[ints, slices, None, ...]: Slice, then Squeeze the int axes, Unsqueeze the Nones."""
    b = v.b
    parts = list(index) if isinstance(index, tuple) else [index]
    ndim = len(v.shape(0))
    taken = sum(1 for p in parts if p is not None and p is not Ellipsis)
    if Ellipsis in parts:
        i = parts.index(Ellipsis)
        parts[i:i + 1] = [slice(None)] * (ndim - taken)
    else:
        parts += [slice(None)] * (ndim - taken)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = out = 0
    for p in parts:
        if p is None:
            unsqueeze.append(out)
            out += 1
            continue
        if isinstance(p, slice):
            if not _full(p):
                step = 1 if p.step is None else int(p.step)
                start = (0 if step > 0 else INT64_MAX) if p.start is None else int(p.start)
                stop = (INT64_MAX if step > 0 else INT64_MIN) if p.stop is None else int(p.stop)
                starts.append(start), ends.append(stop), axes.append(dim), steps.append(step)
            out += 1
        else:   # an int
            i = int(p)
            starts.append(i), ends.append(INT64_MAX if i == -1 else i + 1), axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
        dim += 1
    x = v.x(0)
    if axes:
        x = b.op("Slice", [x, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if squeeze:
        x = b.squeeze(x, squeeze)
    if unsqueeze:
        x = b.unsqueeze(x, unsqueeze)
    if x == v.x(0):
        x = b.op("Identity", [x])
    return x


# ---------------------------------------------------------------- products

def _matmul(v):
    dtype = v.out.dtype
    return v.b.op("MatMul", [_as(v, 0, dtype), _as(v, 1, dtype)])


def _linear(v):
    b = v.b
    x, w = v.x(0), v.x(1)
    bias = [v.x(2)] if v.n_inputs > 2 else []
    if len(v.shape(0)) == 2:
        return b.op("Gemm", [x, w] + bias, transB=1)
    y = b.op("MatMul", [x, b.op("Transpose", [w], perm=[1, 0])])
    return b.op("Add", [y] + bias) if bias else y


def _conv2d_gemm(v):
    conv = _as_conv(v)
    if conv is not None:
        return conv
    b = v.b
    y = b.op("MatMul", [v.x(1), v.x(0)])                 # (O, K) @ (N, K, L)
    if v.n_inputs > 2:
        y = b.op("Add", [y, b.unsqueeze(v.x(2), [1])])
    return y


def _as_conv(v):
    """conv2d_gemm fed by reshape(im2col(x, channels_first)) -> one Conv (x: NCHW)."""
    b = v.b
    flat = v.producer(0)
    if flat is None or flat.name != "reshape":
        return None
    im = flat.producer(0)
    if (im is None or im.name != "im2col" or not im.params.get("channels_first")
            or im.params.get("pad_value", 0.0) != 0):
        return None
    (kh, kw), stride = im.param("kernel"), im.param("stride")
    (ph, pw), dilation = im.param("padding"), im.param("dilation")
    o, k = v.shape(1)
    n, c = im.shape(0)[:2]
    if c * kh * kw != k:
        return None
    oh, ow = im.out.shape[4], im.out.shape[5]
    w = v.producer(1)
    if w is not None and w.name == "reshape" and w.shape(0) == (o, c, kh, kw):
        weight = w.x(0)
    else:
        weight = b.reshape(v.x(1), (o, c, kh, kw))
    inputs = [im.x(0), weight] + ([v.x(2)] if v.n_inputs > 2 else [])
    y = b.op("Conv", inputs, kernel_shape=[kh, kw], strides=list(stride),
             pads=[ph, pw, ph, pw], dilations=list(dilation), group=1)
    return b.reshape(y, (0, o, oh * ow), source_shape=(n, o, oh, ow))


def _im2col(v):
    """Windows as a Gather from the flattened (padded) image: (N, C, kh, kw, oh, ow), or
    transposed to (N, oh, ow, C, kh, kw). Pools and grouped convolutions use it."""
    b = v.b
    (kh, kw), (sh, sw) = v.param("kernel"), v.param("stride")
    (ph, pw), (dh, dw) = v.param("padding"), v.param("dilation")
    pad_value, channels_first = v.param("pad_value", 0.0), v.param("channels_first", False)
    v.static_axes(0, (2, 3))
    h, w = v.shape(0)[2:]
    x = v.x(0)
    if ph or pw:
        x = b.op("Pad", [x, b.ints([0, 0, ph, pw, 0, 0, ph, pw]),
                         b.scalar(pad_value, v.dtype(0))])
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    rows = np.arange(oh)[None, None, :, None] * sh + np.arange(kh)[:, None, None, None] * dh
    cols = np.arange(ow)[None, None, None, :] * sw + np.arange(kw)[None, :, None, None] * dw
    flat = b.reshape(x, (0, 0, hp * wp))
    out = b.op("Gather", [flat, b.const((rows * wp + cols).astype(np.int64), "windows")],
               axis=2)
    return out if channels_first else b.op("Transpose", [out], perm=[0, 4, 5, 1, 2, 3])


def _max_pool2d(v):
    k = int(v.param("kernel"))
    return v.b.op("MaxPool", [v.x(0)], kernel_shape=[k, k], strides=[k, k])


# ---------------------------------------------------------------- the table

EXPORTS = {
    # elementwise
    "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"),
    "div": _binary("Div"), "pow": _pow, "maximum": _binary("Max"),
    "minimum": _binary("Min"), "neg": _unary("Neg"), "exp": _unary("Exp"),
    "log": _unary("Log"), "sqrt": _unary("Sqrt"), "sin": _unary("Sin"),
    "cos": _unary("Cos"), "tanh": _unary("Tanh"), "abs": _unary("Abs"),
    "sigmoid": _unary("Sigmoid"), "relu": _unary("Relu"), "erf": _unary("Erf"),
    "clip": _clip, "where": _where, "cast": _cast, "to_device": _to_device,
    # reductions
    "sum": _reduce("ReduceSum"), "max": _reduce("ReduceMax"), "min": _reduce("ReduceMin"),
    # shapes
    "reshape": _reshape, "transpose": _transpose, "expand": _expand,
    "concatenate": _concatenate, "getitem": _getitem,
    # products, convolution, pooling
    "matmul": _matmul, "linear": _linear, "conv2d_gemm": _conv2d_gemm, "im2col": _im2col,
    "max_pool2d": _max_pool2d,
}

_BACKWARD = "used by backward passes only; a forward pass does not record it"
_LOSS = ("a loss; export the model without its loss (the loss of a prediction is computed "
         "where the labels are)")
NOT_EXPORTED = {
    "scatter_add": _BACKWARD, "col2im": _BACKWARD, "max_pool2d_scatter": _BACKWARD,
    "softmax_cross_entropy_grad": _BACKWARD,
    "softmax_cross_entropy": _LOSS, "softmax_cross_entropy_probs": _LOSS,
    "binary_cross_entropy": _LOSS,
}

# What each translation writes, for the documentation's coverage table.
ONNX_OPS = {
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max",
    "minimum": "Min", "neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin",
    "cos": "Cos", "tanh": "Tanh", "abs": "Abs", "sigmoid": "Sigmoid", "relu": "Relu",
    "erf": "Erf", "clip": "Clip", "where": "Where", "cast": "Cast", "to_device": "Identity",
    "sum": "ReduceSum",
    "max": "ReduceMax", "min": "ReduceMin", "reshape": "Reshape", "transpose": "Transpose",
    "expand": "Expand", "concatenate": "Concat", "getitem": "Slice, Squeeze, Unsqueeze; Gather",
    "matmul": "MatMul", "linear": "Gemm (2-D input); MatMul, Transpose, Add",
    "conv2d_gemm": "Conv (with its im2col); MatMul, Add", "im2col": "Pad, Reshape, Gather, "
    "Transpose", "max_pool2d": "MaxPool",
}
