"""ONNX export: `chainrule.onnx.export(model, args, "model.onnx")` writes a model as an ONNX
graph that ONNX Runtime (and any other ONNX reader) runs; see docs/onnx.md.

Needs the optional packages onnx (to write) and onnxruntime (to run): pip install
"chainrule[onnx]". `import chainrule` never imports them; this package imports onnx only
when `export` runs.

    exporter.py the entry point: traces, checks, writes atomically
    trace.py    running the model with the graph recording, and the second traces
    graph.py    the ONNX graph under construction; one recorded node as a translator sees it
    table.py    the one table: primitive name -> ONNX operators
    recipes.py  constants computed from the input outside the graph, recomputed in ONNX
"""
from ..errors import ExportError
from .exporter import IR_VERSION, MAX_OPSET, MIN_OPSET, OPSET, export
from .table import EXPORTS, NOT_EXPORTED, ONNX_OPS

__all__ = ["export", "ExportError", "EXPORTS", "NOT_EXPORTED", "ONNX_OPS", "OPSET",
           "MIN_OPSET", "MAX_OPSET", "IR_VERSION"]
