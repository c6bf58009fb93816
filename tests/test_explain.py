"""explain's contract: it is the real backward pass observed, and each view says what it should."""
import pathlib
import runpy
import shutil

import numpy as np
import pytest

import chainrule as cr
from chainrule import autograd, nn
from chainrule.errors import ChainruleError, GraphError
from chainrule.explain import render
from chainrule.explain.graph import Graph

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "seeds"


def mlp(act=nn.Sigmoid, sizes=(4, 5, 3), seed=0, scale=1.0, bias_shift=0.0):
    cr.manual_seed(seed)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    net = nn.Sequential(*layers[:-1])
    with cr.no_grad():
        for name, p in net.named_parameters():
            p.mul_(scale)
            if name.endswith("bias"):
                p.add_(bias_shift)
    return net


def mse(net, n=8, seed=1):
    rng = np.random.default_rng(seed)
    x = cr.tensor(rng.standard_normal((n, net[0].in_features)).astype(np.float32))
    t = cr.tensor(rng.standard_normal((n, net[-1].out_features)).astype(np.float32))
    return ((net(x) - t) ** 2).mean()


# ---- the contract: the real engine, observed ----
def test_grads_equal_plain_backward_and_observer_is_removed():
    before = list(autograd._observers)
    net_a, net_b = mlp(), mlp()
    cr.explain(mse(net_a))
    mse(net_b).backward()
    for (name, p), q in zip(net_a.named_parameters(), net_b.parameters()):
        np.testing.assert_array_equal(p.grad._data, q.grad._data, err_msg=name)
    assert autograd._observers == before


def test_grads_accumulate_like_backward():
    w = cr.tensor(2.0, requires_grad=True, name="w")
    cr.explain(w * w)
    cr.explain(w * 3.0)
    assert w.grad.item() == pytest.approx(7.0)


def test_observer_removed_when_backward_fails():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with cr.no_grad():
        w.add_(1.0)                      # invalidates the saved input
    with pytest.raises(GraphError):
        cr.explain(y)
    assert autograd._observers == []


def test_freed_graph_and_leaf_errors_say_what_to_do():
    w = cr.tensor(1.0, requires_grad=True)
    y = w * 2.0
    y.backward()
    with pytest.raises(GraphError, match="cr.explain\\(loss\\) instead"):
        cr.explain(y)
    with pytest.raises(GraphError, match="no graph"):
        cr.explain(w)


def test_rounding_replays_without_touching_the_original_graph():
    w = cr.tensor(0.3, dtype=cr.float64, requires_grad=True, name="w")
    y = (w * 2.0).sigmoid()
    y.name = "y"
    rep = cr.explain(y, round=2)
    assert rep.value("y") == 0.65                  # σ(0.6) = 0.6457 → 0.65
    assert w.grad.item() == pytest.approx(0.65 * 0.35 * 2)
    assert "rounded from 0.6456563" in str(rep)
    w.grad = None
    y.backward()                                   # the original graph is still intact
    s = 1 / (1 + np.exp(-0.6))
    assert w.grad.item() == pytest.approx(s * (1 - s) * 2, rel=1e-12)


# ---- names, summaries, paths ----
def test_unnamed_graph_gets_h_names_and_params_p_names():
    a = cr.tensor(1.5, requires_grad=True)
    rep = cr.explain((a * a).exp())
    text = str(rep)
    assert "h1 = p1 · p1" in text and "h2 = exp(h1)" in text
    assert "∂h1/∂p1 = p1 + p1 = 1.5 + 1.5 = 3" in text       # a·a: both edges, summed
    assert "∂h2/∂p1 = ∂h2/∂h1 · ∂h1/∂p1 = 9.487736 × 3 = 28.46321" in text


def test_big_tensors_are_summarised():
    x = cr.randn(20, 30, requires_grad=True)
    text = str(cr.explain((x * x).sum()))
    assert "tensor(20, 30) mean" in text and "…" in text
    assert len(text.splitlines()) < 40


def test_many_paths_are_counted_not_listed():
    x = cr.tensor(1.01, dtype=cr.float64, requires_grad=True, name="x")
    y = x
    for _ in range(8):
        y = y * 0.5 + y * 0.25                     # 2^8 = 256 paths from the output to x
    rep = cr.explain(y)
    assert "Σ over 256 paths = 0.100112915" in str(rep)
    assert x.grad.item() == pytest.approx(0.75 ** 8, rel=1e-12)


# ---- verify ----
def test_verify_marks_a_wrong_rule():
    from chainrule.ops.registry import REGISTRY, Primitive, apply
    name = "test_explain_wrong_square"
    prim = Primitive(name, np.square, [lambda g, y, x: g * x * 3.0], "x²",
                     ["3x (wrong: should be 2x)"])
    del REGISTRY[name]          # a test-only primitive must not join the real registry
    w = cr.tensor(1.5, dtype=cr.float64, requires_grad=True, name="w")
    y = apply(prim, (w,))
    y.name = "y"
    z = y.exp()
    z.name = "z"
    text = str(cr.explain(z, verify=True))
    # explain reports what the engine did (here with the wrong rule), it does not redo it
    assert w.grad.item() == pytest.approx(np.exp(2.25) * 4.5)
    assert f"∂z/∂w = ∂z/∂y · ∂y/∂w = 9.487735836 × 4.5 = {w.grad.item():.10g}" in text
    assert "∂y/∂w = 3w (wrong: should be 2w) = 4.5 ✗ rule 4.5 vs finite difference 3" in text \
        or "∂y/∂w = 3w (wrong: should be 2w) = 3 × 1.5 (wrong: should be 2 × 1.5) = 4.5 ✗ " \
           "rule 4.5 vs finite difference 3" in text
    assert "∂z/∂y = exp(y) = exp(2.25) = 9.487735836 ✓\n" in text


# ---- what explain knows about a primitive comes from its registry entry ----
def _f64(value, name, grad=False):
    return cr.tensor(value, dtype=cr.float64, requires_grad=grad, name=name)


def test_bce_and_erf_show_their_local_derivatives():
    # elementwise in the registry, so their local derivatives are shown on vectors too (they
    # were left out while explain kept its own table of elementwise primitives)
    from chainrule.ops.losses import BCE
    from chainrule.ops.special import ERF
    w = _f64([0.4, -0.3, 1.2], "w", grad=True)
    x, t = _f64([1.5, 0.5, -1.0], "x"), _f64([1.0, 0.0, 1.0], "t")
    rep = cr.explain(cr.nn.functional.binary_cross_entropy(cr.sigmoid(w * x), t), verify=True,
                     expand=True)
    text = str(rep)
    assert ("h3 = -(t·ln h2 + (1 - t)·ln(1 - h2)) | ∂h3/∂h2 = (h2 - t) / (h2(1 - h2)) = "
            "[-1.54881, 1.86071, -4.32012] ✓;  ∂h3/∂t = ln(1 - h2) - ln h2 = ln(1 - [0.645656, "
            "0.46257, 0.231475]) - ln [0.645656, 0.46257, 0.231475] = [-0.6, 0.15, 1.2] ✓"
            in text)
    assert r"(h_{2}(1 - h_{2})) = [-1.54881, 1.86071, -4.32012]" in rep.markdown()
    # by default the loss is one textbook step, σ and the loss together give (p - t)/N
    text = str(cr.explain(cr.nn.functional.binary_cross_entropy(cr.sigmoid(w * x), t)))
    assert "L = -(1/N) Σ [t·ln h2 + (1 - t)·ln(1 - h2)] = 0.8405758219" in text
    assert ("σ and binary cross-entropy together: ∂L/∂h1 = (h2 − t)/N = ([0.645656, 0.46257, "
            "0.231475] − [1, 0, 1])/3 = [-0.118115, 0.15419, -0.256175]") in text
    p = 1 / (1 + np.exp(-np.array([0.6, -0.15, -1.2])))
    (bce,) = [s for s in rep.rec.steps if s.prim is BCE]
    np.testing.assert_allclose(bce.local[0], (p - t.numpy()) / (p * (1 - p)))
    np.testing.assert_allclose(bce.local[1], np.log(1 - p) - np.log(p))

    for act in (cr.nn.functional.gelu, cr.ops.special.erf):
        w = _f64([0.4, -0.3], "w", grad=True)
        rep = cr.explain(act(w * _f64([1.5, 0.5], "x")).sum(), verify=True)
        (erf,) = [s for s in rep.rec.steps if s.prim is ERF]
        z = erf.inputs[0].value
        np.testing.assert_allclose(erf.local[0], 2 / np.sqrt(np.pi) * np.exp(-z * z))
        shown = ", ".join(f"{v:.6g}" for v in erf.local[0])
        assert f"2/√π·exp(-{erf.inputs[0].name}²) = " in str(rep)
        assert f" = [{shown}] ✓" in str(rep)
    assert "✗" not in rep.text().replace("✓ / ✗", "")


def test_a_new_primitive_is_explained_from_its_registry_entry():
    # softsign s(x) = x/(1 + |x|), registered only for this test: the layer view, the flow,
    # the graph picture, local derivatives and textbook rounding all read its entry's fields
    from chainrule.ops.registry import REGISTRY, Primitive, apply
    name = "test_explain_softsign"
    prim = Primitive(name, lambda x: x / (1 + np.abs(x)),
                     [lambda g, y, x: g * (1 - np.abs(y)) ** 2], formula="ss(x)",
                     derivs=["(1 - |y|)²"], saves=("output",), elementwise=True, rounded=True,
                     symbol="ss", activation="saturating")
    del REGISTRY[name]          # a test-only primitive must not join the real registry
    W = _f64([[0.5, -1.0], [2.0, 0.3]], "W", grad=True)
    b = _f64([0.1, -0.2], "b", grad=True)
    z = _f64([[1.0, 2.0]], "x") @ W.T + b
    a = apply(prim, (z,))
    rep = cr.explain(((a - 1.0) ** 2).sum(), verify=True)
    (layer,) = rep.layers
    assert layer.act.prim is prim and layer.b.name == "b" and layer.layout == "xWt"
    zs = layer.z.value
    np.testing.assert_allclose(layer.act.local[0], 1 / (1 + np.abs(zs)) ** 2)
    assert "(ss'(z) = (1 - |a|)²)" in rep.text() and "✗" not in rep.text().replace("✓ / ✗", "")
    assert "∂a1/∂z1 = (1 - |a1|)² = (1 - |[[-0.583333, 0.705882]]|)² = [[0.173611, 0.0865052]] ✓" \
        in rep.text()
    assert r"(\mathrm{ss}'(z) = (1 - |a|)^{2})" in rep.latex()
    assert "a1 = ss" in rep.graph().dot
    assert rep.flow().layers[0].saturated is not None        # 'saturating': counted
    rounded = cr.explain(((apply(prim, (_f64(0.3, "v", grad=True),)) - 1.0) ** 2), round=2)
    assert "(rounded from 0.2307692)" in str(rounded)


def test_formulas_bracket_by_registry_precedence_and_grouping():
    a, b, c = (_f64(v, n, grad=True) for v, n in ((0.5, "a"), (2.0, "b"), (3.0, "c")))
    L = (a - (b - c)) - (a - b) + a / (b / c) + (a / b) / c + a * (b * c) + (a ** b) ** c
    L.name = "L"
    top = L * 1.0             # a named value inside: the rest is folded into L's formula
    top.name = "top"
    assert "L = a - (b - c) - (a - b) + a / (b / c) + a / b / c + a · b · c + (a^b)^c = " \
        in str(cr.explain(top))
    # a @ b binds like ·: bracketed inside 1/(…), (…)^2 and -(…)
    X, w = _f64([[1.0, 2.0], [0.5, -1.0]], "X"), _f64([0.3, -0.2], "w", grad=True)
    L = (1.0 / (X @ w)).sum() + ((X @ w) ** 2).sum() + (-(X @ w)).sum() + ((X @ w) * 2.0).sum()
    L.name = "L"
    top = L * 1.0
    top.name = "top"
    assert "L = Σ (1 / (X @ w)) + Σ ((X @ w)^2) + Σ (-(X @ w)) + Σ (X @ w · 2) = " \
        in str(cr.explain(top))


def test_pow_rounds_fractional_and_variable_exponents_only():
    w = _f64(1.3, "w", grad=True)
    text = str(cr.explain(w ** 3 + w ** 0.5 + w ** _f64(1.5, "e", grad=True), round=2))
    assert "rounded from 2.197" not in text                  # 1.3³: exact arithmetic
    assert "(rounded from 1.140175)" in text and "(rounded from 1.482228)" in text


def test_no_explain_module_names_a_primitive():
    # everything explain knows about a primitive is a registry field (ops/registry.py)
    import chainrule.explain
    from chainrule.ops.registry import REGISTRY
    folder = pathlib.Path(chainrule.explain.__file__).parent
    for path in sorted(folder.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        named = [n for n in REGISTRY if f'"{n}"' in source or f"'{n}'" in source]
        assert not named, f"{path.name} names primitives {named}; read a registry field"


# ---- layer view and flow ----
def test_layer_view_deltas_and_checks():
    net = mlp(sizes=(3, 4, 2))
    rep = cr.explain(mse(net))
    text = str(rep)
    # a batch through nn.Linear (X Wᵀ): rows, so δ W and δᵀ X, shape-correct as written
    assert "Layer view" in text and "δ1 = f'(z1) ⊙ (δ2 W2)" in text
    assert "∂L/∂2.weight = δ2ᵀ a1 = " in text and "∂L/∂2.bias = Σ_rows δ2 = " in text
    assert "✗" not in text and text.count("✓") >= 5
    assert [layer.label() for layer in rep.layers] == ["0", "2"]


def test_flow_vanishing_with_deep_sigmoid():
    net = mlp(nn.Sigmoid, sizes=(8,) * 9 + (1,), scale=4.0)
    rep = cr.explain(mse(net, n=32))
    flow = rep.flow()
    assert flow.kind == "vanishing"
    assert "vanishing gradient; try ReLU" in str(flow) and "sigmoid'(z) averages" in flow.verdict
    assert len(flow.layers) == 9


def test_flow_exploding_and_dead_and_healthy():
    deep = mlp(nn.ReLU, sizes=(8,) * 8, scale=6.0)
    assert cr.explain(mse(deep)).flow().kind == "exploding"
    dead = mlp(nn.ReLU, sizes=(4, 16, 1), bias_shift=-5.0)
    report = cr.explain(mse(dead)).flow()
    assert report.kind == "dead" and "dead ReLUs" in report.verdict
    assert report.layers[0].dead == 1.0
    ok = cr.explain(mse(mlp(nn.Tanh, sizes=(4, 6, 6, 2)))).flow()
    assert ok.kind == "healthy" and "verdict: gradients reach every layer" in str(ok)


def test_flow_without_layers_lists_parameters():
    w = cr.tensor([1.0, 2.0], requires_grad=True, name="w")
    report = cr.explain((w * w).sum()).flow()
    assert report.layers == [] and report.params[0][0] == "w"
    assert report.params[0][1] == pytest.approx(np.sqrt((4 + 16) / 2))


# ---- update step ----
def test_step_with_optimizer_matches_step_with_lr():
    from chainrule import optim
    a, b = mlp(sizes=(2, 2)), mlp(sizes=(2, 2))
    ra, rb = cr.explain(mse(a)), cr.explain(mse(b))
    ra.step(lr=0.1)
    rb.step(optimizer=optim.SGD(b.parameters(), lr=0.1))
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p._data, q._data, rtol=1e-6)
    assert "Update step" in str(rb) and "η = 0.1" in str(rb)
    c = mlp(sizes=(2, 2))
    rc = cr.explain(mse(c))
    rc.step(optimizer=optim.Adam(c.parameters(), lr=0.01))
    assert "Adam.step()" in str(rc)
    with pytest.raises(ChainruleError, match="exactly one"):
        rc.step()


# ---- outputs ----
def test_markdown_latex_html_and_reprs():
    w = cr.tensor(0.5, requires_grad=True, name="w_o")
    loss = (w * 2.0 - 1.0) ** 2
    loss.name = "Loss"
    rep = cr.explain(loss)
    md = rep.markdown()
    assert md == rep._repr_markdown_()
    assert r"$$\frac{\partial \mathrm{Loss}}{\partial w_{o}}" in md
    assert "\\begin{align*}" in rep.latex()
    html = rep._repr_html_()
    assert html.startswith("<div") and "\\begin{array}" in html
    assert rep.render("text") == str(rep)
    with pytest.raises(ChainruleError, match="unknown format"):
        rep.render("pdf")
    assert repr(rep).startswith("<Explanation of Loss")


# ---- graph ----
def seed_graph(highlight):
    from chainrule.explain.seeds import build
    return build("seed-004", round=2, lr=None).explanations()[0].graph(highlight)


def test_graph_dot_highlights_the_path(tmp_path):
    g = seed_graph("w_h")
    assert g.dot.startswith("digraph chainrule {")
    assert 'label="y_h = σ\\n= 0.57\\n∂Loss/∂y_h = -0.0152397"' in g.dot
    # the path w_h → mul → z_h → y_h → mul → z_o → y_o → sub → pow → Loss: 9 red edges
    assert len([ln for ln in g.dot.splitlines() if "->" in ln and "#d62728" in ln]) == 9
    g2 = seed_graph("b_o")
    assert len([ln for ln in g2.dot.splitlines() if "->" in ln and "#d62728" in ln]) == 5
    with pytest.raises(ChainruleError, match="no such value"):
        seed_graph("nope")


def test_graph_renders_svg_png_and_dot(tmp_path):
    import shutil
    if shutil.which("dot") is None:  # .ci/run installs it; a bare dev machine may not have it
        pytest.skip("graphviz's `dot` program is not installed (apt-get install graphviz)")
    g = seed_graph("w_o")
    svg = pathlib.Path(g.save(str(tmp_path / "g.svg"))).read_text()
    assert "<svg" in svg and "y_o = σ" in svg
    assert (tmp_path / "g.png").exists() is False
    g.save(str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    g.save(str(tmp_path / "g.dot"))
    assert (tmp_path / "g.dot").read_text() == g.dot
    with pytest.raises(ChainruleError, match="unknown extension"):
        g.save(str(tmp_path / "g.bmp"))


def test_graph_without_graphviz_says_how_to_install(monkeypatch, tmp_path):
    import shutil
    import sys
    monkeypatch.setitem(sys.modules, "graphviz", None)       # import graphviz -> ImportError
    monkeypatch.setattr(shutil, "which", lambda name: None)
    g = seed_graph(None)
    with pytest.raises(ChainruleError, match="apt-get install graphviz"):
        g.save(str(tmp_path / "g.svg"), fallback=False)
    assert not (tmp_path / "g.svg").exists()
    assert isinstance(g, Graph) and "digraph" in str(g)
    from chainrule.explain.graph import GraphvizWarning
    with pytest.warns(GraphvizWarning, match=r"dot -Tsvg .*g\.dot -o .*g\.svg"):
        written = g.save(str(tmp_path / "g.svg"))
    assert written == str(tmp_path / "g.dot") and not (tmp_path / "g.svg").exists()
    assert (tmp_path / "g.dot").read_text() == g.dot


# ---- command line and examples ----
def test_cli_options(capsys, tmp_path):
    from chainrule.explain.cli import main
    assert main(["--list"]) == 0
    assert "seed-003" in capsys.readouterr().out
    assert main([]) == 2
    capsys.readouterr()
    out_svg = tmp_path / "net.svg"
    assert main(["--example", "seed-003", "--format", "markdown", "--graph", str(out_svg),
                 "--highlight", "W_X", "--verify"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith("# seed-003") and r"\checkmark" in out
    if shutil.which("dot") is not None:
        assert "<svg" in out_svg.read_text()
    else:   # without graphviz: the .dot file, and the command that renders it
        assert "digraph" in out_svg.with_suffix(".dot").read_text()
        assert not out_svg.exists() and "dot -Tsvg" in captured.err
    assert main(["--example", "seed-001", "--format", "latex"]) == 0
    assert "\\section*{seed-001" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--example", "seed-999"])


@pytest.mark.parametrize("script,expect", [
    ("seed_000_delta_rule.py", "δ1 = f'(z1) ⊙ (W2ᵀ δ2)"),
    ("seed_001_computational_graph.py", "dh/dw = 0.25"),
    ("seed_002_sum_over_samples.py", "2 paths lead from L to w1"),
    ("seed_003_matrix_form.py", "unnormalised (seed 003): E1 = W2ᵀ E2"),
    ("seed_004_one_one_one.py", "= 0.3 − 0.5 × (-0.02895543) = 0.314477715"),
])
def test_examples_run(script, expect, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [script])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert expect in capsys.readouterr().out


def test_blocks_render_consistently():
    blocks = [("title", "T"), ("para", "p"), ("math", "a = 1", "a = 1"),
              ("table", ("function", "local derivatives"), [(("f", "d"), ("f", "d"))])]
    assert render.text(blocks) == "T\n=\n\np\n  a = 1\n  f | d\n"
    assert render.markdown(blocks).startswith("## T\n\np\n\n$$a = 1$$")


def test_long_chains_are_trimmed_not_dumped():
    x = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="x")
    y = x
    for _ in range(300):
        y = y.sin()
    rep = cr.explain(y)
    text = str(rep)
    assert "… 220 more values …" in text and "… 220 more rows …" in text
    assert f"∂h300/∂x = product along one long path = {x.grad.item():.10g}" in text
    assert len(text.splitlines()) < 250


def test_expand_shows_every_primitive_and_keeps_user_names():
    from chainrule.explain.seeds import _net_111
    loss, _ = _net_111()
    text = str(cr.explain(loss, expand=True, round=2))
    assert "h8 = h7^2 = 0.21^2 = 0.0441" in text
    assert "Loss = 0.5 · h8 = 0.5 × 0.0441 = 0.02205" in text
    assert ("∂Loss/∂w_o = ∂Loss/∂h8 · ∂h8/∂h7 · ∂h7/∂y_o · ∂y_o/∂z_o · ∂z_o/∂h4 · ∂h4/∂w_o = "
            "0.5 × 0.42 × (-1) × 0.2419 × 1 × 0.57 = -0.02895543") in text


def test_flow_lists_parameters_outside_linear_layers():
    cr.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    scale = cr.tensor(1.5, requires_grad=True, name="scale")
    loss = (net(cr.randn(2, 1, 6, 6)) ** 2).mean() * scale
    report = cr.explain(loss).flow()
    text = str(report)
    assert "other parameters:" in text and "scale" in text
    assert [f.weight for f in report.layers] == ["0.weight", "3.weight"]   # conv layers too
    assert report.layers[0].dead is not None                 # per channel of the conv


def test_bad_arguments_and_vector_outputs():
    w = cr.tensor([1.0, 2.0], requires_grad=True, name="w")
    with pytest.raises(ChainruleError, match="expected the loss Tensor"):
        cr.explain(3.0)
    with pytest.raises(ChainruleError, match="round=-1 must be an integer"):
        cr.explain((w * w).sum(), round=-1)
    with pytest.raises(GraphError, match="gradient="):
        cr.explain(w * w)
    rep = cr.explain(w * w, gradient=cr.tensor([1.0, 0.5]))
    np.testing.assert_allclose(w.grad._data, [2.0, 2.0])
    assert "shape (2,)" in str(rep)


def test_values_overwritten_in_place_show_as_they_were_computed():
    """`h += 1` writes into the memory of x·w's output: the forward pass still shows x·w as it
    ran, and the updated h, a different value, is named h2."""
    x = cr.tensor(2.0, requires_grad=True, name="x")
    w = cr.tensor(3.0, requires_grad=True, name="w")
    h = x * w
    h.name = "h"
    h += 1
    text = str(cr.explain(h * h))
    assert "h = x · w = 2 × 3 = 6" in text and "h2 = h + 1 = 6 + 1 = 7" in text
    assert "∂L/∂x = ∂L/∂h2 · ∂h2/∂h · ∂h/∂x = 14 × 1 × 3 = 42" in text


def test_a_slice_written_in_place_keeps_the_earlier_values_in_the_record():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    h = x * 2.0
    h[0] = 10.0
    h[1:] += x[1:]                  # through a view: its region is read, then written
    forward = [line["text"] for line in cr.explain((h * h).sum()).to_dict()["forward"]]
    assert forward[1] == "h1 = x · 2 = [1, 2, 3] × 2 = [2, 4, 6]"
    assert forward[2].startswith("h2 = h1 with 10 at [index] = [2, 4, 6] with 10")
    assert forward[3] == "h3 = h2[index] = [10, 4, 6][index] = [4, 6]"
    assert forward[5] == "h5 = h3 + h4 = [4, 6] + [2, 3] = [6, 9]"
