"""`export(model, args, f, ...)`: write a model as an ONNX graph (PyTorch's torch.onnx.export).

The steps:
1. put the model in eval mode and make its float parameters require grad (both undone after),
2. trace it on `args` (trace.py) and again on derived inputs: one per dynamic axis, that
   axis one longer, or one of the same shapes when there are no dynamic axes,
3. check that the traces record the same primitives, then write each node through the table
   (table.py), parameters and buffers as named initializers, dynamic sizes as Shape
   computations (graph.py), constants read from the input by their recipes (recipes.py),
4. drop what no output needs, check the model with onnx.checker, and write the bytes
   atomically (a file is complete or untouched).
"""
import io as _io
import os

from .. import backend
from ..errors import ExportError
from ..tensor import Tensor
from . import table, trace
from .graph import Builder, NodeView, Symbol, onnx_dtype

np = backend.np

OPSET = 17                       # written by default: ONNX Runtime 1.13 (2022) and later read it
MIN_OPSET, MAX_OPSET = 13, 21    # the range this exporter writes correctly
# The IR version each opset came with (ONNX's release table); the lowest one that holds the
# opset is written, so older runtimes read the file.
IR_VERSION = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=None):
    """Write `model` as an ONNX graph to `f` (a path or a binary file object).

    The model runs in eval mode on `args` (a Tensor or a tuple, which may nest, as in
    `(x, (h0, c0))`; every Tensor or NumPy array in it is a graph input, other values are
    passed to forward as they are) and the primitives it records become ONNX operators;
    its parameters and buffers become initializers named by their state_dict keys. `input_names` and `output_names` name the graph's inputs and the
    model's outputs (flattened: `(out, (h, c))` gives three). `dynamic_axes` maps an input or
    output name to the axes whose size may change at run time, as a list (names are made up)
    or a dict axis -> name, e.g. {"x": {0: "batch"}, "logits": {0: "batch"}}; every other size
    is fixed at its traced value. The model also runs on inputs derived from `args` (one
    per dynamic axis, that axis one longer), which tells the sizes and constants that follow
    the input from the fixed ones. `opset_version` defaults to 17 (13 to 21 are written). The
    model's training flags and parameters are left as they were; on an error nothing is
    written. Returns the onnx.ModelProto written.

    See docs/onnx.md for the operator table and the limits (models whose Python code branches
    on input values or loops over a dynamic size cannot be exported as a static graph).
    """
    from ..nn import Module
    if not isinstance(model, Module):
        raise ExportError(f"export: model is a {type(model).__name__}; export writes an "
                          "nn.Module (wrap a function in a Module whose forward calls it).")
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("chainrule.onnx.export needs the onnx package: pip install "
                          "'chainrule[onnx]' (or pip install onnx onnxruntime)") from exc
    opset = OPSET if opset_version is None else int(opset_version)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"export: opset_version {opset_version} is outside the range this "
                          f"exporter writes ({MIN_OPSET} to {MAX_OPSET}); the default is {OPSET}.")
    arrays, template = _split_args(args)
    names = _names(input_names, len(arrays), "input")
    first = _capture(model, arrays, template)
    out_names = _names(output_names, len(first.outputs), "output")
    if len(set(names + out_names)) != len(names) + len(out_names):
        raise ExportError(f"export: input and output names must all differ, got inputs {names} "
                          f"and outputs {out_names}")
    axes = _dynamic_axes(dynamic_axes, names, out_names, arrays, first)
    symbols, traces = _more_traces(model, arrays, template, axes, names, first)
    _check_same_graph(traces, symbols)
    params = _parameters(model)
    builder = Builder(opset, traces, symbols, names, params, type(model).__name__,
                      reserved=names + out_names)
    _emit(builder, traces, out_names)
    graph = _graph(onnx, builder, names, out_names, arrays, axes, first, traces)
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
        ir_version=IR_VERSION[opset], producer_name="chainrule",
        producer_version=_version(), doc_string=f"{type(model).__name__}, exported by chainrule")
    onnx.helper.set_model_props(proto, {"chainrule_version": _version(),
                                        "model": type(model).__name__})
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:      # a bug of this exporter, not the user's
        raise ExportError(f"export: the written graph does not pass onnx.checker: {exc}") \
            from exc
    _write(f, proto.SerializeToString())
    return proto


def _version():
    import chainrule
    return chainrule.__version__


def _split_args(args):
    """(arrays of the graph inputs, the arguments with trace.Slot(j) where input j goes):
    Tensors and NumPy arrays are inputs, also inside (nested) tuples and lists, as in
    `(x, (h0, c0))`; other values go to forward as they are."""
    arrays = []

    def walk(a):
        if isinstance(a, (tuple, list)):
            return type(a)(walk(x) for x in a)
        data = a._data if isinstance(a, Tensor) else a if isinstance(a, np.ndarray) else None
        if data is None:
            return a
        if data.dtype.kind not in "fiub":
            raise ExportError(f"export: an input has dtype {data.dtype}; inputs are float, "
                              "integer or bool tensors.")
        arrays.append(data)
        return trace.Slot(len(arrays) - 1)

    template = walk(tuple(args) if isinstance(args, (tuple, list)) else (args,))
    if not arrays:
        raise ExportError("export: args holds no tensor; pass the example input(s) the model "
                          "is run on, e.g. export(model, cr.randn(1, 64), 'model.onnx').")
    return arrays, template


def _names(given, n, kind):
    given = list(given or [])
    if len(given) > n:
        raise ExportError(f"export: {len(given)} {kind} names for {n} {kind}s: {given}")
    return [str(x) for x in given] + [f"{kind}_{i}" for i in range(len(given), n)]


def _capture(model, arrays, template):
    modules = list(model.modules())
    training = [(m, m.training) for m in modules]
    frozen = [p for p in model.parameters() if not p.requires_grad and
              backend.is_float(p._data.dtype)]
    model.eval()
    for p in frozen:
        p.requires_grad = True
    try:
        return trace.run(model, arrays, template)
    finally:
        for p in frozen:
            p.requires_grad = False
        for m, mode in training:
            m.__dict__["training"] = mode


def _dynamic_axes(dynamic_axes, names, out_names, arrays, first):
    """{name: {axis: symbol name}} with axes made non-negative and checked."""
    out = {}
    shapes = {n: a.shape for n, a in zip(names, arrays)}
    shapes.update({n: t.shape for n, t in zip(out_names, first.outputs)})
    for name, axes in (dynamic_axes or {}).items():
        if name not in shapes:
            raise ExportError(f"export: dynamic_axes names {name!r}, which is not an input or "
                              f"output name ({names + out_names}); pass input_names and "
                              "output_names.")
        if not isinstance(axes, dict):
            axes = {a: f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
        ndim = len(shapes[name])
        fixed = {}
        for a, sym in axes.items():
            if not -ndim <= int(a) < ndim:
                raise ExportError(f"export: dynamic axis {a} of {name!r}, which has shape "
                                  f"{tuple(shapes[name])}")
            fixed[int(a) % ndim] = str(sym)
        out[name] = fixed
    return out


def _more_traces(model, arrays, template, axes, names, first):
    """Symbols (one per dynamic axis name on the inputs) and every trace, trace 0 first."""
    rng = np.random.default_rng(20240601)
    places = {}                                     # symbol -> [(input, axis)]
    for j, name in enumerate(names):
        for a, sym in axes.get(name, {}).items():
            places.setdefault(sym, []).append((j, a))
    symbols, traces = [], [first]
    for sym, where in places.items():
        sizes = {arrays[j].shape[a] for j, a in where}
        if len(sizes) > 1:
            raise ExportError(f"export: dynamic axis '{sym}' has sizes {sorted(sizes)} in the "
                              "example inputs; axes sharing a name must have the same size.")
        size = sizes.pop()
        other = size + 1
        symbols.append(Symbol(sym, where[0][0], where[0][1], size, other, len(traces)))
        resized = trace.other_inputs(arrays, {place: other for place in where}, rng)
        traces.append(_retrace(model, resized, template, f"dynamic axis '{sym}' of size "
                               f"{other} instead of {size}"))
    if not symbols:
        traces.append(_retrace(model, trace.other_inputs(arrays, {}, rng), template,
                               "another input of the same shape"))
    return symbols, traces


def _retrace(model, arrays, template, what):
    try:
        return _capture(model, arrays, template)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"export: the model failed on a second input ({what}), which export "
                          f"runs to tell fixed sizes and values from those that follow the "
                          f"input: {type(exc).__name__}: {exc}") from exc


def _check_same_graph(traces, symbols):
    """Every trace must record the same primitives, wired the same way."""
    first = traces[0]
    for r, other in enumerate(traces[1:], 1):
        what = next((f"dynamic axis '{s.name}' of size {s.other_size} instead of {s.size}"
                     for s in symbols if s.trace == r), "another input of the same shape")
        a, b = first.nodes, other.nodes
        i = next((i for i, (x, y) in enumerate(zip(a, b))
                  if x.prim is not y.prim or _wiring(first, x) != _wiring(other, y)), None)
        if i is None and len(a) == len(b) and len(first.outputs) == len(other.outputs):
            continue
        if i is None and len(a) != len(b):
            i = min(len(a), len(b)) - 1
        where = (f" (the first difference: {a[i].prim.name} in "
                 f"{trace.layer_name(first, a[i])})" if i is not None and i >= 0 else "")
        hint = ("a recurrent layer unrolls its loop over the sequence, so a sequence axis "
                "must be static; " if symbols else "")
        raise ExportError(
            f"export: the model records a different graph for {what}: {len(a)} primitive "
            f"calls for the example input, {len(b)} for the other{where}. Its forward "
            f"branches or loops on input values or sizes, and ONNX export writes one fixed "
            f"graph; {hint}make the example input representative, or the axis static.")


def _wiring(tr, node):
    """Where each input of `node` comes from: a node's index, a graph input, or a leaf."""
    out = []
    for t in node.inputs:
        if t._node is not None and t.requires_grad:
            out.append(tr.index[t._node])
        else:
            j = tr.input_position(t)
            out.append(("input", j) if j is not None else "leaf")
    return out


def _parameters(model):
    """id(Tensor) -> (state_dict key, Tensor) for every parameter and buffer."""
    out = {}
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        if p is not None and id(p) not in out:
            out[id(p)] = (name, p)
    return out


def _emit(builder, traces, out_names):
    """Write every recorded node, then an Identity naming each output."""
    first = traces[0]
    for i, node in enumerate(first.nodes):
        export = table.EXPORTS.get(node.prim.name)
        view = NodeView(builder, i)
        if export is None:
            why = table.NOT_EXPORTED.get(node.prim.name, "no ONNX translation is written for it")
            view.fail(f"this primitive has no ONNX export ({why}).")
        module = first.modules.get(node)
        qual = (module._qualname or type(module).__name__) if module is not None else "model"
        builder.prefix = f"{qual}/{node.prim.name}/"
        try:
            builder.values[i] = export(view)
        except ExportError:
            raise
        except Exception as exc:      # a case the translation does not handle: say where
            raise ExportError(f"export: writing {node.prim.name} in {view.layer} as ONNX "
                              f"failed: {type(exc).__name__}: {exc}") from exc
    builder.prefix = ""
    values = []
    for k, t in enumerate(first.outputs):
        if t._node is not None and t.requires_grad:
            values.append(builder.values[first.index[t._node]])
            continue
        j = first.input_position(t)
        if j is not None:
            values.append(builder.input_names[j])
            continue
        twins = [tr.outputs[k] for tr in traces]
        if not all(trace.same(t._data, u._data) for u in twins[1:]):
            raise ExportError(f"export: output {out_names[k]!r} is computed outside the "
                              "recorded graph from the input values (through .data, .numpy() "
                              "or a NumPy call); export cannot follow it.")
        values.append(builder.const(t._data, "const_output"))
    for value, name in zip(values, out_names):
        builder.nodes.append(_identity(value, name))


def _identity(value, name):
    from onnx import helper
    return helper.make_node("Identity", [value], [name], name=f"{name}_out")


def _graph(onnx, builder, names, out_names, arrays, axes, first, traces):
    helper = onnx.helper
    inputs = []
    for name, a in zip(names, arrays):
        dims = [axes.get(name, {}).get(i, n) for i, n in enumerate(a.shape)]
        inputs.append(helper.make_tensor_value_info(name, onnx_dtype(a.dtype), dims))
    outs = []
    for k, (name, t) in enumerate(zip(out_names, first.outputs)):
        derived = builder.dims([tuple(tr.outputs[k].shape) for tr in traces],
                               f"the shape of output {name!r}")
        dims = []
        for i, d in enumerate(derived):
            if i in axes.get(name, {}):
                dims.append(axes[name][i])
            elif isinstance(d, int):
                dims.append(d)
            elif d[0] == 1 and len(d[1]) == 1:
                dims.append(d[1][0].name)
            else:
                dims.append(None)
        outs.append(helper.make_tensor_value_info(name, onnx_dtype(t.dtype), dims))
    nodes, inits = _prune(builder.nodes, builder.initializers, out_names)
    return helper.make_graph(nodes, builder.model_name, inputs, outs, initializer=inits)


def _prune(nodes, initializers, out_names):
    """Only the nodes and initializers some output needs (patterns such as Conv leave the
    generic translation of their parts unused)."""
    needed, kept = set(out_names), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(x for x in node.input if x)
    kept.reverse()
    return kept, [t for t in initializers if t.name in needed]


def _write(f, data):
    """All or nothing: a path gets an atomic replace, a file object one write."""
    if isinstance(f, (str, bytes, os.PathLike)):
        from ..io import atomic_write
        atomic_write(f, data)
    elif hasattr(f, "write"):
        if isinstance(f, _io.TextIOBase):
            raise ExportError("export: f is a text file; open it in binary mode ('wb')")
        f.write(data)
    else:
        raise ExportError(f"export: f must be a path or a binary file object, got "
                          f"{type(f).__name__}")
