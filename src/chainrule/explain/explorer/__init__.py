"""The backward-pass explorer: one self-contained HTML page that animates a derivation.

`Explanation.html()` (and `chainrule explain --example seed-004 --html out.html`) writes a
page that needs nothing but a browser: the data model (`to_dict()`, docs/explain_schema.md),
the page's own JavaScript and CSS, and KaTeX (vendored under vendor/katex with its licence;
its CSS and the fonts the derivations use are inlined as data: URLs) are all in the file,
and its Content-Security-Policy forbids every network request. The page draws the graph
left to right with its own layered layout, steps through the forward pass node by node and
the backward pass edge by edge in the engine's order, shows each parameter's chain-rule
product and paths, the update step, the layer view, the finite-difference checks, and
worksheets checked by the rules of `Explanation.exercise`. See docs/explorer.md.

The page reads nothing but what `page_data` puts in it: per explanation the data model, plus
the registry's formula and local-derivative rules of the primitives in the graph, and the
answer keys of the worksheets.
"""
import base64
import functools
import html
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ASSETS = HERE / "assets"
KATEX = HERE / "vendor" / "katex"
FONTS = ("Main-Regular", "Main-Bold", "Main-Italic", "Math-Italic", "AMS-Regular",
         "Size1-Regular", "Size2-Regular", "Size3-Regular", "Size4-Regular")
HIDES = ("forward", "local", "chain", "update", "all")
# What the page may do: run its own inline scripts and styles, use data: fonts and images.
# Nothing else — no fetch, no image, no font, no frame from anywhere.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "font-src data:; img-src data:")


def page_data(rep, heading=None):
    """What the page shows of one Explanation: its data model and the extras the model does
    not hold (the registry's rules of the primitives in its graph, the worksheets' keys).

    >>> import chainrule as cr
    >>> w = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="w")
    >>> y = (w * 2.0) ** 2
    >>> y.name = "y"
    >>> d = page_data(cr.explain(y))
    >>> d["model"]["schema"], sorted(d["worksheets"])
    ('chainrule.explain', ['all', 'chain', 'forward', 'local'])
    >>> d["worksheets"]["chain"]["answers"]
    {'∂y/∂w': 4.0}
    """
    from .. import fmt
    model = rep.to_dict()
    names = {str(n["id"]): fmt.latex_name(n["name"]) for n in model["nodes"] if n["name"]}
    return {"heading": heading or model["title"], "model": model, "ops": _ops(model),
            "latex_names": names, "worksheets": _worksheets(rep)}


def _ops(model):
    """The registry entry of each primitive in the graph, as the page typesets it: its
    formula, its inputs' names and the local derivative of each."""
    from ...ops.registry import REGISTRY
    from .. import fmt
    out = {}
    for n in model["nodes"]:
        name = n["op"]
        if name is None or name in out:
            continue
        prim = REGISTRY.get(name)
        if prim is None:
            continue
        out[name] = {"inputs": list(prim.inputs),
                     "formula": fmt.latex_template(prim.formula),
                     "derivs": [fmt.latex_template(d) for d in prim.derivs],
                     "elementwise": bool(prim.elementwise), "symbol": prim.symbol}
    return out


def _worksheets(rep):
    """For each `hide` that leaves at least one blank: the blanks (label → number), the
    answer key as the worksheet has it, and which answers are rounded function values (they
    are also accepted when they round to the key)."""
    from ...errors import ChainruleError
    out = {}
    for hide in HIDES:
        try:
            ws = rep.exercise(hide=hide)
        except ChainruleError:
            continue
        if not ws.blanks:
            continue
        out[hide] = {"blanks": dict(ws.blanks), "answers": _jsonable(ws.answers),
                     "rounded": dict(ws._rounded), "sig": ws.sig, "rounding": ws.rounding}
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and x != x:
        return "nan"
    if isinstance(x, float) and x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return x


def page(parts, title=None, embedded=False):
    """The explorer page (HTML text) for `parts`: a list of (heading, Explanation) — several
    make a menu — or of `page_data` dicts. `embedded`: shown inside a notebook's frame
    (smaller margins, listens for new data from the widget).

    >>> import chainrule as cr
    >>> w = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="w")
    >>> text = page([("w³", cr.explain(w ** 3))])
    >>> text.startswith("<!DOCTYPE html>"), "https://" in text, len(text) < 3_000_000
    (True, False, True)
    """
    datas = [p if isinstance(p, dict) else page_data(p[1], p[0]) for p in parts]
    if not datas:
        from ...errors import ChainruleError
        raise ChainruleError("explorer: nothing to show; pass at least one Explanation")
    title = title or datas[0]["heading"]
    payload = {"explanations": datas, "embedded": bool(embedded)}
    return _TEMPLATE.format(csp=CSP, title=html.escape(title), katex_css=katex_css(),
                            css=_asset("explorer.css"), data=script_json(payload),
                            katex_js=_katex_js(), js=_asset("explorer.js"))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="chainrule explain: the backward-pass explorer">
<title>{title}</title>
<style>{katex_css}</style>
<style>{css}</style>
</head>
<body>
<div id="app" class="app"><noscript>The explorer needs JavaScript.</noscript></div>
<script type="application/json" id="cr-data">{data}</script>
<script>{katex_js}</script>
<script>{js}</script>
</body>
</html>
"""


def script_json(obj):
    """JSON text safe inside a <script> element (no '</script', no '<!--')."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


def iframe(page_html, height=660):
    """The page in an iframe's srcdoc (how a notebook shows it: scripts run in their own
    document, whatever the notebook's own page allows)."""
    return (f'<iframe class="chainrule-explorer" srcdoc="{html.escape(page_html, quote=True)}"'
            f' style="width:100%;height:{int(height)}px;border:1px solid #ccd;border-radius:4px"'
            ' sandbox="allow-scripts" title="chainrule backward-pass explorer"></iframe>')


@functools.lru_cache(maxsize=None)
def _asset(name):
    return (ASSETS / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _katex_js():
    text = (KATEX / "katex.min.js").read_text(encoding="utf-8")
    assert "</script" not in text.lower()
    return text


@functools.lru_cache(maxsize=None)
def katex_css():
    """KaTeX's stylesheet with the fonts the derivations use inlined (data: URLs); the
    @font-face rules of the others (calligraphic, fraktur, script, …) are dropped, so no
    rule can ask for a file."""
    import re
    css = (KATEX / "katex.min.css").read_text(encoding="utf-8")

    def face(m):
        rule = m.group(0)
        font = re.search(r"url\(fonts/KaTeX_([A-Za-z0-9-]+)\.woff2\)", rule)
        if font is None or font.group(1) not in FONTS:
            return ""
        data = base64.b64encode((KATEX / "fonts" / f"KaTeX_{font.group(1)}.woff2")
                                .read_bytes()).decode("ascii")
        return re.sub(r"src:[^}]*", f'src:url(data:font/woff2;base64,{data}) format("woff2")',
                      rule)
    css = re.sub(r"@font-face\{[^}]*\}", face, css)
    assert "url(fonts/" not in css
    return css


def notebook_html(rep, height=660):
    """How an Explanation shows itself in Jupyter: the explorer in an iframe, and under it,
    folded, the static derivation (for notebook viewers that run no scripts)."""
    from .. import render
    return ('<div class="chainrule-explain">'
            + iframe(page([(None, rep)], embedded=True), height)
            + '<details><summary>the derivation as text (for viewers that run no scripts)'
            '</summary>' + render.html_page(rep.blocks()) + '</details></div>')


def write(path, text):
    """Write the page atomically (never half-written); returns `path`."""
    from ..graph import write_atomic
    write_atomic(str(path), text.encode("utf-8"))
    return str(path)
