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

__all__ = ["explain", "Explanation", "widget"]


def widget(model, sliders=None, **options):
    """The backward-pass explorer as a Jupyter widget with sliders: `model` is a function of
    keyword arguments that returns the loss Tensor; each slider is one of its scalar
    arguments, and moving it re-runs `model` and the real backward pass in the kernel, so
    every number on the page updates. `sliders`: {name: (low, high) or (low, high, step)}
    (default: every argument with a number as default); `round=`, `verify=` as in
    `explain`, `lr=` adds an update step. Needs anywidget (`pip install
    "chainrule[notebook]"`); without it a ChainruleError says so. See docs/explorer.md.

    >>> import chainrule as cr
    >>> def model(w=0.5, x=2.0):
    ...     w = cr.tensor(w, dtype=cr.float64, requires_grad=True, name="w")
    ...     y = (w * x) ** 2
    ...     y.name = "y"
    ...     return y
    >>> cr.explain.widget(model, {"v": (0, 1)})
    Traceback (most recent call last):
    chainrule.errors.ChainruleError: explain.widget: model has no argument 'v'; its arguments are w, x
    >>> view = cr.explain.widget(model, {"w": (-1.0, 1.0)})     # doctest: +SKIP
    >>> view                                                    # doctest: +SKIP
    >>> view.set(w=0.25).explanation.grad("w")                  # doctest: +SKIP
    1.0
    """
    from .explorer.widget import widget as make
    return make(model, sliders, **options)


# `cr.explain` is the function (chainrule's lazy export) or this package (after a submodule
# import); `cr.explain.widget(...)` works either way.
explain.widget = widget


class _CallableModule(types.ModuleType):
    """Importing a submodule (`chainrule.explain.seeds`) makes Python set the attribute
    `chainrule.explain` to this package, hiding the lazily exported function; calling the
    package therefore calls `explain`, so `cr.explain(loss)` works either way."""

    def __call__(self, *args, **kwargs):
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
