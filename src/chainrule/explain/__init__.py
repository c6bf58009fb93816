"""Explain a backward pass the way a textbook does.

`cr.explain(loss)` runs the real backward pass (so `.grad` is filled as by `loss.backward()`)
while observing the engine, and returns an `Explanation`: the forward pass, each primitive's
local derivative, the chain-rule product for every parameter, the layer view for networks, an
update step, a graph picture, textbook rounding, finite-difference checks and a gradient-flow
diagnosis. See `explain` for the options.
"""
from .core import Explanation, explain

__all__ = ["explain", "Explanation"]
