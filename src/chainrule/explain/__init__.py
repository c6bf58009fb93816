"""Explain a backward pass the way a textbook does.

`cr.explain(loss)` runs the real backward pass (so `.grad` is filled as by `loss.backward()`)
while observing the engine, and returns an `Explanation`: the forward pass, each primitive's
local derivative, the chain-rule product for every parameter, sums over paths, the layer view
for networks, an update step (with an optimizer's state), a graph picture, textbook rounding,
finite-difference checks, a gradient-flow diagnosis, worksheets with blanks
(`Explanation.exercise`) and a versioned data model (`Explanation.to_dict`, schema in
docs/explain_schema.md) that every view is rendered from. See `explain` for the options.
"""
import sys
import types

from .core import Explanation, explain

__all__ = ["explain", "Explanation"]


class _CallableModule(types.ModuleType):
    """Importing a submodule (`chainrule.explain.seeds`) makes Python set the attribute
    `chainrule.explain` to this package, hiding the lazily exported function; calling the
    package therefore calls `explain`, so `cr.explain(loss)` works either way."""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
