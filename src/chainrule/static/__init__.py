"""Static graphs: `cr.compile` captures a whole call (forward, backward, optimizer step) once
and replays it (docs/static_graphs.md).

    taint.py     Traced arrays: values computed from inputs and state, told from constants
    capture.py   the capture session: engine hooks -> instructions over numbered buffers
    program.py   guards and straight-line Python generated from the instructions
    render.py    the captured program as text (`step.graph()`)
    compiled.py  `cr.compile` and the compiled function (variants, check mode, fallback)
"""
from .compiled import CompiledFunction, CompileWarning, compile

__all__ = ["compile", "CompiledFunction", "CompileWarning"]
