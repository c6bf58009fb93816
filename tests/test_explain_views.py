"""explain's views of the learner's own model: the data model, worksheets, full values, LaTeX
that pdflatex compiles, Markdown for notebooks, textbook rounding in the backward pass, the
layer view's layouts, NaN origins, and everything that works without graphviz."""
import json
import os
import pathlib
import runpy
import shutil
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.errors import ChainruleError
from chainrule.explain.cli import exercise_main, main as explain_main
from chainrule.explain.seeds import build

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "seeds"


def f64(value, name=None, grad=False):
    return cr.tensor(value, dtype=cr.float64, requires_grad=grad, name=name)


def issue_model():
    """The issue's first model, exactly as a new user writes it (float32, only L named)."""
    w = cr.tensor(0.5, requires_grad=True, name="w")
    b = cr.tensor(0.0, requires_grad=True, name="b")
    x = cr.tensor([1.0, 2.0, 3.0, 4.0], name="x")
    y = cr.tensor([2.0, 4.0, 6.0, 8.0], name="y")
    loss = ((w * x + b - y) ** 2).mean()
    loss.name = "L"
    return loss


# ---- the crash and the naming rules ----
def test_issue_model_explains_in_every_format():
    rep = cr.explain(issue_model())
    text, md, tex = rep.text(), rep.markdown(), rep.latex(standalone=True)
    assert "∂L/∂w = ∂L/∂h2 · ∂h2/∂h1 · ∂h1/∂w = Σ ([-0.75, -1.5, -2.25, -3] ⊙ 1 ⊙ " \
           "[1, 2, 3, 4]) = -22.5" in text
    assert r"\frac{2(h_{2} - y)}{N}" in md and tex.isascii() and tex.rstrip().endswith(
        r"\end{document}")
    # only the output named: the primitive chain is shown, no one-step fold
    assert "∂L/∂w = ∂L/∂w" not in text and "h1 = w · x = 0.5 × [1, 2, 3, 4]" in text


def test_unnamed_inputs_and_targets_appear_with_their_role():
    w = f64([0.2, -0.4], "w", grad=True)
    o = f64([[1.0, 2.0], [3.0, 1.0], [0.5, 0.5]]) @ w
    loss = ((o - f64([0.5, -0.5, 0.0])) ** 2).mean()
    text = str(cr.explain(loss))
    assert "x = [[1, 2], [3, 1], [0.5, 0.5]]    (input, shape (3, 2))" in text
    assert "t = [0.5, -0.5, 0]    (target, shape (3,))" in text
    assert "L = (1/N) Σ (h1 - t)²" in text and "∂L/∂h1 = 2(h1 - t)/N" in text
    assert "x2" not in text


def test_mse_loss_is_written_in_textbook_form_not_as_a_product():
    w = f64([0.3, 0.7], "w", grad=True)
    o = (w * f64([1.0, 2.0], "x")).sigmoid()
    o.name = "o"
    text = str(cr.explain(cr.nn.functional.mse_loss(o, f64([0.0, 1.0], "t"))))
    assert "L = ½ Σ (o - t)²" in text and "∂L/∂o = o - t = " in text
    assert "(o - t)·(o - t)" not in text and "(o - t) · (o - t)" not in text


def test_scalar_seed_loss_keeps_the_seed_form_when_folded():
    from chainrule.explain.seeds import _net_111
    loss, _ = _net_111()
    text = str(cr.explain(loss, round=2))
    assert "Loss = 0.5 · (y - y_o)^2 = 0.5 × (0.8 - 0.59)^2 = 0.02205" in text


# ---- the data model ----
def test_to_dict_is_versioned_json_and_agrees_with_the_engine():
    from chainrule.explain.seeds import _net_111
    loss, (w_h, b_h, w_o, b_o) = _net_111()
    rep = cr.explain(loss, round=2, verify=True)
    rep.step(lr=0.5)
    m = json.loads(rep.to_json())
    assert m["schema"] == "chainrule.explain" and m["version"] == 1
    for key in ("title", "loss", "settings", "notes", "nan", "nodes", "edges",
                "backward_order", "forward", "steps", "chains", "path_sums", "layers",
                "gradients", "updates", "verification", "quantities"):
        assert key in m, key
    nodes = {n["name"]: n for n in m["nodes"] if n["name"]}
    assert nodes["y_h"]["value"] == 0.57 and nodes["y_h"]["unrounded"] == pytest.approx(
        1 / (1 + np.exp(-0.3)))
    assert m["quantities"]["∂Loss/∂w_o"]["value"] == pytest.approx(-0.02895543, abs=1e-12)
    assert m["quantities"]["w_o(1)"]["value"] == pytest.approx(0.314477715, abs=1e-12)
    chain = next(c for c in m["chains"] if c["name"] == "w_o")
    assert chain["paths"][0]["values"] == pytest.approx([-0.21, 0.2419, 0.57])
    assert m["verification"]["enabled"] and m["verification"]["ok"]
    order = m["backward_order"]
    assert order[0] == m["loss"]["node"] and len(order) == len(set(order))
    # every edge with the gradient the engine passed along it
    e = next(e for e in m["edges"] if e["from"] == nodes["w_o"]["id"])
    assert e["passed"] == pytest.approx(w_o.grad.item() if False else -0.02895543, abs=1e-8)
    upd = m["updates"][0]
    assert upd["optimizer"] == "gradient descent" and upd["lr"] == 0.5
    line = upd["lines"][2]
    start, end, q = line["refs"][-1]
    assert q == "w_o(1)" and line["text"][start:end] == "0.314477715"


def test_to_json_writes_nan_as_a_string():
    w = f64([1.0, -1.0], "w", grad=True)
    with np.errstate(all="ignore"):
        rep = cr.explain(w.sqrt().sum())
    m = json.loads(rep.to_json())
    assert "nan" in json.dumps(m["nodes"]) and m["nan"]["phase"] == "forward"


# ---- worksheets ----
def test_worksheet_hides_the_chain_and_checks_answers():
    rep = build("seed-004", round=2).explanations()[0]
    ws = rep.exercise(hide="chain")
    text = str(ws)
    assert "∂Loss/∂w_o = ∂Loss/∂y_o · ∂y_o/∂z_o · ∂z_o/∂w_o = -0.21 × 0.2419 × 0.57 = [__" in text
    assert "-0.02895543" not in text and "0.314477715" not in text   # nor the update using it
    assert ws.answers["∂Loss/∂w_o"] == -0.02895543
    k = ws.blanks["∂Loss/∂w_o"]
    assert f"w_o(1) = w_o(0) − η · ∂Loss/∂w_o = 0.3 − 0.5 × [__{k}__] = 0.314477715" not in text
    result = ws.check({"∂Loss/∂w_o": -0.029, "∂Loss/∂b_o": -0.0508, k: -0.029})
    assert result.verdicts["∂Loss/∂w_o"].ok and result.verdicts["∂Loss/∂b_o"].ok
    assert not result.verdicts["∂Loss/∂w_h"].ok            # unanswered
    assert result.correct == 2 and result.total == len(ws.blanks) == 8   # 4 gradients, 4 updates
    wrong = ws.check({"∂Loss/∂w_o": -0.03})
    assert not wrong.verdicts["∂Loss/∂w_o"].ok and "off by" in str(wrong)
    with pytest.raises(ChainruleError, match="not a blank"):
        ws.check({"nope": 1})


def test_worksheet_kinds_and_lists():
    rep = build("seed-004", round=2).explanations()[0]
    local = rep.exercise(hide="local")
    assert "∂y_o/∂z_o = y_o(1 - y_o) = 0.59 × (1 - 0.59) = [__" in str(local)
    fwd = rep.exercise(hide="forward")
    assert fwd.answers["y_h"] == 0.57
    assert fwd.check({"y_h": 0.5744}).verdicts["y_h"].ok      # rounds to the key: accepted
    assert not fwd.check({"y_h": 0.58}).verdicts["y_h"].ok
    one = rep.exercise(hide=["∂Loss/∂w_o"])
    assert list(one.answers) == ["∂Loss/∂w_o"] and one.check({1: -0.02895543}).all_correct
    everything = rep.exercise(hide="all")
    assert len(everything.blanks) > len(local.blanks) + len(fwd.blanks)
    md, tex = everything.markdown(), everything.latex(standalone=True)
    assert r"\boxed{\," in md and tex.isascii()
    with pytest.raises(ChainruleError, match="hide="):
        rep.exercise(hide="sideways")
    with pytest.raises(ChainruleError, match="no quantity"):
        rep.exercise(hide=["∂Loss/∂q"])


def test_worksheet_update_blanks_with_an_optimizer():
    w = f64(0.8, "w", grad=True)
    loss = (w * 2.0 - 1.0) ** 2
    loss.name = "L"
    rep = cr.explain(loss)
    rep.step(optimizer=optim.Adam([w], lr=0.1))
    ws = rep.exercise(hide="update")
    assert set(ws.answers) == {"m_w(1)", "v_w(1)", "m̂_w", "v̂_w", "w(1)"}
    assert ws.check({q: v for q, v in ws.answers.items()}).all_correct


def test_exercise_cli(capsys):
    from chainrule.cli import main
    assert main(["exercise", "--example", "seed-004", "--round", "2", "--hide", "chain"]) == 0
    sheet = capsys.readouterr().out
    assert sheet.startswith("Worksheet: ") and "[__1__]" in sheet
    assert exercise_main(["--example", "seed-004", "--round", "2", "--hide", "chain",
                          "--answers"]) == 0
    key = capsys.readouterr().out
    assert key.startswith("Answer key") and "∂Loss/∂w_o = -0.02895543" in key
    assert exercise_main(["--example", "seed-004", "--hide", "∂Loss/∂w_o,y_h",
                          "--format", "latex"]) == 0
    assert capsys.readouterr().out.isascii()
    assert exercise_main(["--example", "seed-004", "--hide", "nothing-like-this"]) == 1


# ---- full values ----
def test_full_values_on_request_and_cli_flag(capsys):
    x = f64(np.arange(20.0).reshape(4, 5) / 10, "x")
    w = f64(np.ones((5, 3)) * 0.1, "W", grad=True)
    loss = (x @ w).sum()
    short, full = cr.explain(loss, retain_graph=True), cr.explain(loss, full=True)
    assert "tensor(4, 5) mean" in short.text() and "tensor(" not in full.text()
    assert "[[0, 0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8, 0.9]," in full.text()
    assert explain_main(["--example", "seed-003", "--full"]) == 0
    assert "tensor(" not in capsys.readouterr().out
    assert explain_main(["--example", "seed-003", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1


# ---- textbook rounding reaches the backward pass ----
def test_rounding_rounds_looked_up_local_derivatives():
    w = f64(0.7, "w", grad=True)
    loss = (w * 2.0).sin() * 1.0
    loss.name = "L"
    rep = cr.explain(loss, round=2)
    assert w.grad.item() == pytest.approx(round(np.cos(1.4), 2) * 2, abs=1e-15)
    assert "cos(1.4) = 0.17 (rounded from 0.1699671)" in rep.text()
    # σ's y(1 - y) of a rounded y is exact arithmetic: not rounded (seed 004's 0.2419)
    from chainrule.explain.seeds import _net_111
    loss, _ = _net_111()
    assert "= 0.2419" in cr.explain(loss, round=2).text()


# ---- the layer view's layouts ----
def test_layer_view_writes_each_layout_shape_correctly():
    from chainrule.explain.layers import agree
    assert not agree(np.ones((1, 2)), np.ones(2))         # broadcastable is not the same shape
    rng = np.random.default_rng(0)
    X, W = f64(rng.standard_normal((5, 3)), "X"), f64(rng.standard_normal((3, 2)), "W", True)
    text = str(cr.explain(((X @ W).sigmoid() ** 2).sum()))
    assert "∂L/∂W = Xᵀ δ1 = " in text and "δ1 · Xᵀ" not in text and "✗" not in text
    W2 = f64(rng.standard_normal((2, 3)), "W", True)
    text = str(cr.explain(((W2 @ f64([1.0, 2.0, 3.0], "x")).tanh() ** 2).sum()))
    assert "∂L/∂W = δ1 · xᵀ = " in text and "✗" not in text


# ---- NaN origin without a recorded line ----
def test_nan_origin_without_anomaly_mode_says_how_to_get_the_line():
    w = f64([0.5, -0.5], "w", grad=True)
    with np.errstate(all="ignore"):
        rep = cr.explain((w * 2.0).log().sum())
    text = rep.text()
    assert text.index("⚠ The first non-finite value is made by log") < text.index("Forward pass")
    assert "cr.detect_anomaly(check_nan=False)" in text
    assert rep.to_dict()["nan"]["source"] is None


# ---- Markdown for notebooks, LaTeX for pdflatex ----
def test_markdown_has_no_cell_tables_and_keeps_prose_spaces():
    md = build("seed-003").render("markdown")
    assert "|---|" not in md and "\\begin{array}" in md
    assert r"(g \text{ summed over the batch})" in build("seed-004").render("markdown")


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (.ci/run installs texlive)")
def test_latex_standalone_compiles_with_pdflatex(tmp_path):
    import learner_graphs.cases as cases
    docs = {"seed-004-round2": build("seed-004", round=2).render("latex", standalone=True),
            "seed-001": build("seed-001", verify=True).render("latex", standalone=True),
            "worksheet": build("seed-004", round=2).explanations()[0].exercise(
                hide="all").latex(standalone=True)}
    for name in ("conv_two_layers", "manual_softmax_cross_entropy", "adam_step", "nan_origin",
                 "log_softmax_nll"):
        with np.errstate(all="ignore"):
            docs[name] = cases.CASES[name]().rep.latex(standalone=True)
    docs["in-place"] = _updated_in_place().latex(standalone=True)
    for name, doc in docs.items():
        assert doc.isascii(), name
        (tmp_path / f"{name}.tex").write_text(doc)
        res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                              f"{name}.tex"], cwd=tmp_path, capture_output=True, timeout=120)
        log = res.stdout.decode(errors="replace")
        assert res.returncode == 0, f"{name}: pdflatex failed:\n{log[-3000:]}"
        assert (tmp_path / f"{name}.pdf").stat().st_size > 1000


def _updated_in_place():
    """In-place updates, whose formulas name operands inside their prose ("old with values at
    [index]"): LaTeX must switch back to math for each operand."""
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    h = x * 2.0
    h[0] = 10.0
    h[1:] += x[1:]
    g = h.clone()
    g.copy_(h * 3.0)
    return cr.explain((g * h).sum())


# ---- without graphviz ----
@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    """A machine without graphviz: `dot` off the PATH, the Python package not importable."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if not (pathlib.Path(p) / "dot").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert shutil.which("dot") is None
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_everything_but_pictures_works_without_graphviz(no_graphviz, capsys, monkeypatch):
    rep = build("seed-004", round=2).explanations()[0]
    assert rep.text() and rep.markdown() and rep.latex() and rep.to_json()
    assert rep.graph("w_h").dot.startswith("digraph") and rep.graph()._repr_svg_() is None
    assert str(rep.exercise()) and rep.flow().kind == "healthy"
    assert explain_main(["--example", "seed-004", "--graph", "net.svg"]) == 0
    err = capsys.readouterr().err
    assert (no_graphviz / "net.dot").exists() and not (no_graphviz / "net.svg").exists()
    assert "dot -Tsvg net.dot -o net.svg" in err and "apt-get install graphviz" in err
    from chainrule.explain.graph import GraphvizWarning
    monkeypatch.setattr(sys, "argv", ["seed_004_one_one_one.py"])
    with pytest.warns(GraphvizWarning, match="dot -Tsvg seed_004_graph.dot"):
        runpy.run_path(str(EXAMPLES / "seed_004_one_one_one.py"), run_name="__main__")
    assert "graph of the network: seed_004_graph.dot" in capsys.readouterr().out


def test_docs_explain_md_shows_what_its_code_prints():
    """docs/explain.md: its python blocks run in order; each output block that follows one is
    what it printed (line by line, in order)."""
    import contextlib
    import io
    import re
    doc = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "explain.md").read_text(
        encoding="utf-8")
    namespace = {}
    pairs = re.findall(r"```python\n(.*?)```\n```\n(.*?)```", doc, re.S)
    assert len(pairs) == 2
    for code, shown in pairs:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/explain.md", "exec"), namespace)
        printed = out.getvalue()
        for line in shown.strip("\n").splitlines():
            assert line in printed, f"docs/explain.md shows {line!r}, the code printed:\n{printed}"


def test_a_weight_shared_across_time_steps_adds_up_its_shares():
    cr.manual_seed(0)
    rnn = cr.nn.RNN(3, 4, batch_first=True, dtype=cr.float64)
    out, _ = rnn(cr.randn(2, 3, 3, dtype=cr.float64))
    text = str(cr.explain((out ** 2).mean()))
    assert "(this layer's share; the shares add up to ∂L/∂W)" in text
    assert "✗" not in text
