"""The ONNX graph under construction, and each recorded node as its translator sees it.

`Builder` collects ONNX nodes and initializers and knows the opset (the few operators whose
signature changed between opsets 13 and 21 are written here, once). `NodeView` is what a
translator in `table.py` receives for one recorded node: its inputs as ONNX values, its
parameters (checked to be the same in every trace, or turned into shape computations where
they follow a dynamic axis), its producers (for patterns such as im2col -> Conv), and the
layer it came from, for errors.

Leaves of the recorded graph become: graph inputs (the traced input tensors), initializers
named after the model's parameters and buffers, or constants. A constant whose value is not
the same in every trace was computed from the input outside the graph (softmax's max shift,
a leaky ReLU's mask, an LSTM's zero state shaped like the batch): `recipes.explain` finds
the ONNX computation that gives it, or the export stops with an error saying where.
"""
import itertools
from fractions import Fraction

from .. import backend
from ..errors import ExportError
from . import recipes
from .trace import layer_name, same

np = backend.np

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def onnx_dtype(dtype):
    """The TensorProto element type of a NumPy dtype."""
    from onnx import helper
    try:
        return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"export: dtype {dtype} has no ONNX equivalent") from exc


class Symbol:
    """A dynamic axis: its name, the graph input and axis it is read from, its traced size
    and the size it had in its own second trace (whose index in the trace list is `trace`)."""

    def __init__(self, name, input_index, axis, size, other_size, trace):
        self.name, self.input_index, self.axis = name, input_index, axis
        self.size, self.other_size, self.trace = size, other_size, trace


class Builder:
    def __init__(self, opset, traces, symbols, input_names, params, model_name, reserved=()):
        self.opset = opset
        self.traces = traces            # trace 0 is the one written
        self.symbols = symbols          # [Symbol]
        self.input_names = input_names
        self.params = params            # id(Tensor) -> (qualified name, Tensor)
        self.model_name = model_name
        self.nodes, self.initializers = [], []
        self.values = {}                # node index -> ONNX value of its output
        self.leaves = {}                # id(leaf Tensor) -> ONNX value
        self.reshaped = {}              # ONNX value made by a Reshape -> (source, source shape)
        self._names = set(reserved)    # the graph's input and output names
        self._count = itertools.count()
        self._consts = {}
        self._sym_values = {}
        self.prefix = ""                # name prefix of the nodes being emitted

    # ----- names, nodes, constants -----
    def fresh(self, hint):
        hint = "".join(c if c.isalnum() or c in "._" else "_" for c in hint) or "v"
        name = hint
        while name in self._names:
            name = f"{hint}_{next(self._count)}"
        self._names.add(name)
        return name

    def op(self, op_type, inputs, n_out=1, **attrs):
        """Append one ONNX node; its output name(s)."""
        from onnx import helper
        outs = [self.fresh(f"{self.prefix}{op_type}") for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs,
                                           name=self.fresh(f"{self.prefix}{op_type}_node"),
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def initializer(self, array, name):
        from onnx import numpy_helper
        name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, array, hint="const"):
        """An initializer holding `array` (small ones shared by value)."""
        array = np.asarray(array)
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.initializer(array, hint)
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        return self.const(np.asarray(list(values), dtype=np.int64), "ints")

    def scalar(self, value, dtype):
        return self.const(np.asarray(value, dtype=dtype), "scalar")

    # ----- operators whose signature depends on the opset -----
    def reduce(self, op_type, x, axes, keepdims):
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=axes, keepdims=int(keepdims))

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x, axes):
        return self.op("Squeeze", [x, self.ints(axes)])

    def reshape(self, x, shape, source_shape=None, allowzero=False):
        """Reshape to `shape` (an ONNX value, or a tuple of ints); remembered, so a reshape
        back to `source_shape` can use the source itself."""
        if not isinstance(shape, str):
            shape = self.ints(shape)
        out = self.op("Reshape", [x, shape], allowzero=1 if allowzero else None)
        if source_shape is not None:
            self.reshaped[out] = (x, tuple(source_shape))
        return out

    # ----- dynamic sizes -----
    def symbol_value(self, s):
        """The size of dynamic axis `s` at run time, an int64 tensor of shape (1,)."""
        if s.name not in self._sym_values:
            saved, self.prefix = self.prefix, ""
            shape = self.op("Shape", [self.input_names[s.input_index]])
            self._sym_values[s.name] = self.op("Gather", [shape, self.ints([s.axis])], axis=0)
            self.prefix = saved
        return self._sym_values[s.name]

    def dims(self, per_trace, what):
        """How each entry of an int tuple follows the dynamic axes, given its value in every
        trace: an int (the same in all), or (Fraction c, [Symbol]) meaning c · Π sizes."""
        base = per_trace[0]
        for r, other in enumerate(per_trace[1:], 1):
            if len(other) != len(base):
                raise ExportError(f"export: {what} has {len(base)} entries for one input and "
                                  f"{len(other)} for {self.describe(r)}; a static graph "
                                  "cannot follow that.")
        out = []
        for i, e in enumerate(base):
            deps = []
            for s in self.symbols:
                if per_trace[s.trace][i] != e:
                    deps.append(s)
            for r, other in enumerate(per_trace[1:], 1):
                if not any(s.trace == r for s in self.symbols) and other[i] != e:
                    raise ExportError(f"export: {what} is {tuple(base)} for the example input "
                                      f"but {tuple(other)} for another input of the same shape: "
                                      "it depends on the input values, which a static graph "
                                      "cannot follow.")
            if not deps:
                out.append(int(e))
                continue
            for s in deps:
                if e == 0 or per_trace[s.trace][i] * s.size != e * s.other_size:
                    raise ExportError(
                        f"export: {what} is {tuple(base)} when dynamic axis '{s.name}' has size "
                        f"{s.size} and {tuple(per_trace[s.trace])} when it has size "
                        f"{s.other_size}; export follows sizes proportional to a dynamic axis "
                        f"(like -1 or batch·k) only. Make axis '{s.name}' static (leave it out of "
                        "dynamic_axes) or reshape with -1 there.")
            c = Fraction(int(e))
            for s in deps:
                c /= s.size
            out.append((c, deps))
        return out

    def shape_value(self, dims, infer=True, like=None):
        """An ONNX int64 shape tensor for `dims` (from `dims()`): a constant where it can be.
        For Reshape (`infer`): a dynamic entry equal to the input's (`like`) at the same
        place is written 0 (copy it), and one other dynamic entry -1 when none is -1."""
        if infer and like is not None and 0 not in dims:
            dims = [0 if not isinstance(d, int) and i < len(like) and _same_dim(d, like[i])
                    else d for i, d in enumerate(dims)]
        dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if not dynamic:
            return self.ints(dims)
        if infer and len(dynamic) == 1 and -1 not in dims:
            return self.ints([-1 if i == dynamic[0] else d for i, d in enumerate(dims)])
        pieces, run = [], []
        for d in dims:
            if isinstance(d, int):
                run.append(d)
                continue
            if run:
                pieces.append(self.ints(run))
                run = []
            pieces.append(self.dim_value(d))
        if run:
            pieces.append(self.ints(run))
        return pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)

    def dim_value(self, dim):
        c, deps = dim
        value = self.symbol_value(deps[0])
        for s in deps[1:]:
            value = self.op("Mul", [value, self.symbol_value(s)])
        if c.numerator != 1:
            value = self.op("Mul", [value, self.ints([c.numerator])])
        if c.denominator != 1:
            value = self.op("Div", [value, self.ints([c.denominator])])
        return value

    def describe(self, r):
        for s in self.symbols:
            if s.trace == r:
                return f"dynamic axis '{s.name}' of size {s.other_size} instead of {s.size}"
        return "another input of the same shape"


def _same_dim(a, b):
    return (not isinstance(b, int) and a[0] == b[0] and
            [s.name for s in a[1]] == [s.name for s in b[1]])


class NodeView:
    """One recorded node as a translator sees it (trace 0's node, and its twins)."""

    def __init__(self, builder, index):
        self.b = builder
        self.index = index
        self.node = builder.traces[0].nodes[index]
        self.twins = [t.nodes[index] for t in builder.traces]
        self.name = self.node.prim.name
        self.params = self.node.params
        self.out = self.node.out

    @property
    def layer(self):
        return layer_name(self.b.traces[0], self.node)

    def fail(self, why):
        raise ExportError(f"export: {self.name} in {self.layer}: {why}")

    @property
    def n_inputs(self):
        return len(self.node.inputs)

    def shape(self, k):
        return tuple(self.node.inputs[k].shape)

    def dtype(self, k):
        return self.node.inputs[k].dtype

    def producer(self, k):
        """The NodeView of the node that made input k, or None for a leaf."""
        t = self.node.inputs[k]
        if t._node is None or not t.requires_grad:
            return None
        return NodeView(self.b, self.b.traces[0].index[t._node])

    # ----- parameters -----
    def param(self, name, default=None):
        """A parameter that must be the same in every trace."""
        value = self.params.get(name, default)
        for r, twin in enumerate(self.twins[1:], 1):
            if not same(value, twin.params.get(name, default)):
                self.fail(f"its parameter {name}={_short(value)} is "
                          f"{_short(twin.params.get(name, default))} for "
                          f"{self.b.describe(r)}; a static graph cannot follow that.")
        return value

    def dims(self, name):
        """An int-tuple parameter (a shape) as `Builder.dims` describes it."""
        return self.b.dims([tuple(t.params[name]) for t in self.twins],
                           f"{self.name} {name} in {self.layer}")

    def in_dims(self, k):
        """Input k's shape as `Builder.dims` describes it."""
        return self.b.dims([tuple(t.inputs[k].shape) for t in self.twins],
                           f"the input shape of {self.name} in {self.layer}")

    def out_dims(self):
        return self.b.dims([tuple(t.out.shape) for t in self.twins],
                           f"the output shape of {self.name} in {self.layer}")

    def static_axes(self, k, axes):
        """Check that input k's `axes` have the same size in every trace."""
        dims = self.in_dims(k)
        for a in axes:
            if not isinstance(dims[a], int):
                self.fail(f"axis {a} of its input follows dynamic axis "
                          f"'{dims[a][1][0].name}', which this operation needs static.")

    # ----- inputs -----
    def x(self, k):
        """The ONNX value of input k."""
        b = self.b
        t = self.node.inputs[k]
        if t._node is not None and t.requires_grad:
            return b.values[b.traces[0].index[t._node]]
        j = b.traces[0].input_position(t)
        if j is not None:
            return b.input_names[j]
        key = id(t)
        if key in b.leaves:
            return b.leaves[key]
        if key in b.params:
            name, _ = b.params[key]
            value = b.initializer(t._data, name)
        else:
            twins = [tw.inputs[k] for tw in self.twins]
            if all(u is t for u in twins) or all(same(t._data, u._data) for u in twins[1:]):
                value = b.const(t._data, _const_hint(t, b))
            else:
                value = recipes.explain(self, [u._data for u in twins], f"input {k}")
        b.leaves[key] = value
        return value

    def array_param(self, name, arrays=None):
        """The ONNX value of an array parameter (a where's condition, an index array): a
        graph input when it is one of the integer inputs, a constant when it is the same in
        every trace, else what `recipes.explain` finds."""
        b = self.b
        arrays = arrays if arrays is not None else [t.params[name] for t in self.twins]
        positions = [_input_holding(tr, a) for tr, a in zip(b.traces, arrays)]
        if positions[0] is not None and all(p == positions[0] for p in positions):
            return b.input_names[positions[0]]
        if all(same(arrays[0], a) for a in arrays[1:]):
            return b.const(arrays[0], name)
        return recipes.explain(self, arrays, f"its {name}")


def _input_holding(trace, array):
    """j when `array` is the data of graph input j (the very array), else None."""
    for j, t in enumerate(trace.inputs):
        if t._data is array:
            return j
    return None


def _const_hint(t, b):
    """A readable initializer name for a constant: the buffer it was read from, if any."""
    base = t._data.base if t._data.base is not None else t._data
    for name, p in b.params.values():
        if p._data is base or p._data.base is base and p._data.size == t._data.size:
            return f"{name}_reshaped"
    return "const"


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
