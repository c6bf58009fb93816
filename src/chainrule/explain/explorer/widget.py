"""`cr.explain.widget(model, sliders)`: the explorer in Jupyter, with sliders that re-run the
real engine in the kernel.

`model` is a function of scalar keyword arguments that builds the computation and returns
its loss Tensor (or an Explanation); every slider is one of its arguments. Moving a slider
calls `model` again with the new values, runs `cr.explain` on the result (the real backward
pass) and sends the new data model to the page, which keeps its step, tab and selection, so
every number on it updates. The widget is an anywidget (`pip install "chainrule[notebook]"`),
imported only when a widget is made; its Python side (`values`, `data`, `explanation`,
`error`) works without a browser.
"""
import inspect
import json
import numbers

from ...errors import ChainruleError

INSTALL = 'pip install "chainrule[notebook]"   (or: pip install anywidget)'


class AnywidgetMissing(ChainruleError, ImportError):
    """The notebook widget was asked for without the anywidget package."""


def widget(model, sliders=None, *, round=None, verify=False, lr=None, height=620):
    """The explorer as a Jupyter widget with one slider per scalar argument of `model`.

    model:    a function of keyword arguments returning the loss Tensor (or an Explanation);
              its arguments with a number as default become sliders when `sliders` is None.
    sliders:  {name: (low, high) or (low, high, step) or {"min", "max", "step", "value"}}:
              which arguments get sliders, and their ranges (the default value of the
              argument is where the slider starts; without one, the middle of the range).
    round, verify:  as in `cr.explain` (textbook rounding, finite-difference checks).
    lr:       also take one gradient-descent step with this learning rate (the update step).

    The result is an anywidget: display it in a notebook. `.values` (the sliders' values;
    assigning it re-runs the model), `.explanation` (the latest Explanation), `.data` (the
    page's data, JSON) and `.error` (why the model failed at these values, else '') are
    its Python side.
    """
    specs = slider_specs(model, sliders)
    try:
        import anywidget  # noqa: F401  (only to say what is missing)
        import traitlets  # noqa: F401
    except ImportError as exc:
        raise AnywidgetMissing(f"explain.widget needs the anywidget package, which is not "
                               f"installed: {INSTALL}. Without it, display the Explanation "
                               f"itself (its _repr_html_ is the same explorer, without "
                               f"sliders) or save it with .html('page.html'). ({exc})") from exc
    options = {"round": round, "verify": bool(verify), "lr": lr}
    return _widget_class()(model, specs, options, int(height))


def slider_specs(model, sliders=None):
    """[{name, min, max, step, value}] for `model`'s sliders (see `widget`).

    >>> def model(w=0.5, x=2.0, label="y"):
    ...     return None
    >>> [s["name"] for s in slider_specs(model)]
    ['w', 'x']
    >>> slider_specs(model, {"w": (-1, 1, 0.1)})
    [{'name': 'w', 'min': -1.0, 'max': 1.0, 'step': 0.1, 'value': 0.5}]
    """
    if not callable(model):
        raise ChainruleError(f"explain.widget: model must be a function returning the loss "
                             f"Tensor, got {type(model).__name__}")
    try:
        params = inspect.signature(model).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    defaults = {n: p.default for n, p in params.items()
                if p.default is not inspect.Parameter.empty}
    if sliders is None:
        sliders = {n: None for n, v in defaults.items() if _number(v)}
        if not sliders:
            raise ChainruleError("explain.widget: model has no argument with a number as its "
                                 "default, so there is nothing to put on a slider; give it "
                                 "one (def model(w=0.5): ...) or pass sliders={'w': (-1, 1)}")
    elif not isinstance(sliders, dict):
        raise ChainruleError("explain.widget: sliders must be a dict {name: (low, high)} or "
                             "{name: (low, high, step)}")
    specs = []
    for name, rng in sliders.items():
        if name not in params and not takes_any:
            raise ChainruleError(f"explain.widget: model has no argument {name!r}; its "
                                 f"arguments are {', '.join(params) or 'none'}")
        specs.append(_spec(name, rng, defaults.get(name)))
    missing = [n for n, p in params.items()
               if p.default is inspect.Parameter.empty and n not in sliders
               and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              inspect.Parameter.KEYWORD_ONLY)]
    if missing:
        raise ChainruleError(f"explain.widget: model's argument {missing[0]!r} has no default "
                             "and no slider; give it a default or a slider")
    return specs


def _number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _spec(name, rng, default):
    value = float(default) if _number(default) else None
    if rng is None:
        v = 0.0 if value is None else value
        half = max(1.0, 2 * abs(v))
        lo, hi, step = v - half, v + half, None
    elif isinstance(rng, dict):
        lo, hi, step = rng.get("min"), rng.get("max"), rng.get("step")
        if rng.get("value") is not None:
            value = rng["value"]
    elif isinstance(rng, (tuple, list)) and len(rng) in (2, 3):
        lo, hi = rng[0], rng[1]
        step = rng[2] if len(rng) == 3 else None
    else:
        raise ChainruleError(f"explain.widget: slider {name!r} must be (low, high), (low, high, "
                             f"step) or a dict with min, max, step, value; got {rng!r}")
    if not (_number(lo) and _number(hi)) or not lo < hi:
        raise ChainruleError(f"explain.widget: slider {name!r} needs numbers low < high, got "
                             f"{lo!r}, {hi!r}")
    lo, hi = float(lo), float(hi)
    if value is None:
        value = (lo + hi) / 2
    value = float(value)
    lo, hi = min(lo, value), max(hi, value)
    step = float(step) if _number(step) and step > 0 else float(f"{(hi - lo) / 200:.2g}")
    return {"name": name, "min": lo, "max": hi, "step": step, "value": value}


def run_model(model, values, options):
    """Call `model(**values)` and explain what it returns (the real backward pass)."""
    from ..core import Explanation, explain
    from ...tensor import Tensor
    out = model(**values)
    if isinstance(out, Explanation):
        return out
    if not isinstance(out, Tensor):
        raise ChainruleError(f"explain.widget: model returned {type(out).__name__}; it must "
                             "return the loss Tensor (or cr.explain(loss))")
    rep = explain(out, round=options.get("round"), verify=options.get("verify", False))
    if options.get("lr") is not None:
        rep.step(lr=float(options["lr"]))
    return rep


def payload(rep, values):
    """The page's data for one run of the model, as JSON text."""
    from . import page_data
    heading = rep.to_dict()["title"] + (" at " + ", ".join(f"{k} = {v:g}" for k, v in
                                                             values.items()) if values else "")
    return json.dumps({"explanations": [page_data(rep, heading)], "embedded": True},
                      ensure_ascii=False, allow_nan=False, separators=(",", ":"))


_CLASS = []


def _widget_class():
    if _CLASS:
        return _CLASS[0]
    import anywidget
    import traitlets
    from . import _asset, page

    class ExplainWidget(anywidget.AnyWidget):
        """The explorer with sliders; assigning `.values` re-runs the model."""
        _esm = _asset("widget.js")
        page = traitlets.Unicode("").tag(sync=True)
        data = traitlets.Unicode("").tag(sync=True)
        sliders = traitlets.List([]).tag(sync=True)
        values = traitlets.Dict({}).tag(sync=True)
        error = traitlets.Unicode("").tag(sync=True)
        height = traitlets.Int(620).tag(sync=True)

        def __init__(self, model, specs, options, height):
            super().__init__(sliders=specs, height=height,
                             values={s["name"]: s["value"] for s in specs})
            self._model, self._options = model, options
            self.explanation = None
            self.runs = 0
            self._rerun()
            if self.explanation is None:
                raise ChainruleError(f"explain.widget: the model fails at its starting values: "
                                     f"{self.error}")
            self.page = page([json.loads(self.data)["explanations"][0]], embedded=True)
            self.observe(self._on_values, names="values")

        def _on_values(self, change):
            self._rerun()

        def _rerun(self):
            values = {k: float(v) for k, v in self.values.items()}
            try:
                rep = run_model(self._model, values, self._options)
                data = payload(rep, values)
            except Exception as exc:     # the learner's model at these values: say why
                self.error = f"{type(exc).__name__}: {exc}"
                return
            self.explanation = rep
            self.runs += 1
            self.error = ""
            self.data = data

        def set(self, **values):
            """Move sliders from Python: `view.set(w=0.3)` (re-runs the model)."""
            unknown = set(values) - set(self.values)
            if unknown:
                raise ChainruleError(f"widget.set: no slider {sorted(unknown)[0]!r}; the "
                                     f"sliders are {', '.join(self.values)}")
            self.values = {**self.values, **{k: float(v) for k, v in values.items()}}
            return self

    _CLASS.append(ExplainWidget)
    return ExplainWidget
