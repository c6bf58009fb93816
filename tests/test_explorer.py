"""The backward-pass explorer (issue 12): `Explanation.html()`, `chainrule explain --html`,
the notebook view (`_repr_html_`, `cr.explain.widget`), and the page in a real browser.

The browser tests drive Debian's `chromium` with its `chromedriver` through Selenium (both
installed by .ci/run; nothing is downloaded at run time). They open the page of seed 004 and
of a 2-2-2 network, step through every forward and backward step comparing the numbers shown
with `to_dict()`, click a parameter and check the highlighted path, fill worksheet blanks,
and assert that no request left the page and nothing was logged as an error. Without a
browser they skip, saying why. Screenshots of three states are saved under the test's tmp
directory and copied to /tmp/explorer_shots/.
"""
import html
import json
import math
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError
from chainrule.explain import explorer
from chainrule.explain.seeds import build

SHOTS = pathlib.Path(os.environ.get("CHAINRULE_EXPLORER_SHOTS", "/tmp/explorer_shots"))


# ---------------------------------------------------------------- models
def seed_004():
    return build("seed-004", round=2)


def seed_004_rep():
    return seed_004().explanations()[0]


def net_222(verify=True):
    """A 2-2-2 sigmoid network (nn.Linear layers), ½ Σ (a − t)², one SGD step with momentum."""
    f = cr.float64
    net = nn.Sequential(nn.Linear(2, 2, dtype=f), nn.Sigmoid(), nn.Linear(2, 2, dtype=f),
                        nn.Sigmoid())
    with cr.no_grad():
        net[0].weight.copy_(cr.tensor([[0.15, 0.20], [0.25, 0.30]], dtype=f))
        net[0].bias.copy_(cr.tensor([0.35, 0.35], dtype=f))
        net[2].weight.copy_(cr.tensor([[0.40, 0.45], [0.50, 0.55]], dtype=f))
        net[2].bias.copy_(cr.tensor([0.60, 0.60], dtype=f))
    x = cr.tensor([0.05, 0.10], dtype=f, name="x")
    t = cr.tensor([0.01, 0.99], dtype=f, name="t")
    loss = ((net(x) - t) ** 2).sum() * 0.5
    loss.name = "E"
    rep = cr.explain(loss, verify=verify)
    rep.step(optimizer=cr.optim.SGD(net.parameters(), lr=0.5, momentum=0.9))
    return rep


def embedded_data(text):
    m = re.search(r'<script type="application/json" id="cr-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def expected_steps(m):
    """The steps the page must show, from the model alone: every value in forward order
    (constants aside), the seed, every edge that carried a gradient in backward_order, the
    updates."""
    const = {n["id"] for n in m["nodes"]
             if n["op"] is None and n["role"] in ("constant", "hidden")}
    steps = [("forward", n["id"]) for n in m["nodes"] if n["id"] not in const]
    steps.append(("seed", m["loss"]["node"]))
    for node in m["backward_order"]:
        for k, e in sorted(((k, e) for k, e in enumerate(m["edges"]) if e["to"] == node),
                           key=lambda ke: ke[1]["input"]):
            if e["passed"] is not None:
                steps.append(("backward", k))
    steps += [("update", k) for k in range(len(m["updates"]))]
    return steps


# ---------------------------------------------------------------- without a browser
def test_page_is_one_small_self_contained_file():
    rep = seed_004_rep()
    text = rep.html()
    size = len(text.encode("utf-8"))
    assert text.startswith("<!DOCTYPE html>") and 200_000 < size < 1_500_000, size
    # nothing is fetched: no external reference, no file beside it, a policy that forbids all
    assert not re.search(r"""(?i)\b(src|href|action|poster|data)\s*=\s*["']?\s*(https?:|//|ftp:)""",
                         text)
    assert not re.search(r"""(?i)url\(\s*["']?\s*(?!data:|#)""", text)   # data: or #marker
    assert "@import" not in text and "<link" not in text.lower() and "<iframe" not in text
    assert not re.search(r"(?i)<script[^>]*\bsrc\s*=", text)
    assert "default-src 'none'" in text
    # what the page reads is the data model, exactly
    data = embedded_data(text)
    assert data["explanations"][0]["model"] == json.loads(rep.to_json())
    assert data["explanations"][0]["ops"]["sigmoid"]["derivs"] == ["y(1 - y)"]
    # KaTeX is inlined with its fonts, vendored with its licence
    assert "katex" in text and "data:font/woff2;base64," in text
    licence = (explorer.KATEX / "LICENSE").read_text()
    assert "MIT License" in licence and "Khan Academy" in licence
    for font in explorer.FONTS:
        assert (explorer.KATEX / "fonts" / f"KaTeX_{font}.woff2").stat().st_size > 1000


def test_html_writes_the_page_and_the_cli_makes_one_for_a_seed(tmp_path, capsys):
    rep = seed_004_rep()
    path = tmp_path / "rep.html"
    assert rep.html(str(path)) == str(path)
    assert path.read_text(encoding="utf-8") == rep.html()
    from chainrule.explain.cli import main
    out = tmp_path / "seed-004.html"
    assert main(["--example", "seed-004", "--round", "2", "--html", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"explorer page written to {out}" in err
    data = embedded_data(out.read_text(encoding="utf-8"))
    headings = [e["heading"] for e in data["explanations"]]
    assert len(headings) == 2 and headings[0].startswith("1-1-1 network")


def test_notebook_shows_the_explorer_in_an_iframe():
    rep = seed_004_rep()
    shown = rep._repr_html_()
    assert shown.startswith('<div class="chainrule-explain"><iframe')
    assert 'sandbox="allow-scripts"' in shown
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', shown).group(1))
    data = embedded_data(srcdoc)
    assert data["embedded"] is True
    assert data["explanations"][0]["model"]["chains"][2]["written"] == -0.02895543
    assert "<details>" in shown            # the static derivation, for viewers without scripts


def test_page_worksheets_are_the_exercise_keys():
    rep = seed_004_rep()
    data = explorer.page_data(rep)
    for hide, sheet in data["worksheets"].items():
        ws = rep.exercise(hide=hide)
        assert sheet["blanks"] == ws.blanks and sheet["answers"] == ws.answers
        assert sheet["sig"] == 3 and sheet["rounding"] == 2
    assert set(data["worksheets"]) == {"forward", "local", "chain", "update", "all"}


def test_page_needs_an_explanation():
    with pytest.raises(ChainruleError, match="nothing to show"):
        explorer.page([])


# ---------------------------------------------------------------- the widget (Python side)
def _model(w=0.5, x=2.0):
    w = cr.tensor(w, dtype=cr.float64, requires_grad=True, name="w")
    y = (w * x) ** 2
    y.name = "y"
    return y


def test_widget_reruns_the_real_engine_when_a_slider_moves():
    pytest.importorskip("anywidget")
    view = cr.explain.widget(_model, {"w": (-1.0, 1.0, 0.05)}, lr=0.1)
    assert view.sliders == [{"name": "w", "min": -1.0, "max": 1.0, "step": 0.05, "value": 0.5}]
    assert view.values == {"w": 0.5} and view.runs == 1
    assert view.explanation.grad("w") == 4.0                      # d(2w)²/dw = 8w
    assert view.page.startswith("<!DOCTYPE html>") and "application/json" in view.page
    view.values = {"w": 0.25}                                     # what the slider sends
    assert view.runs == 2 and view.explanation.grad("w") == 2.0
    data = json.loads(view.data)
    model = data["explanations"][0]["model"]
    assert data["embedded"] and model["chains"][0]["grad"] == 2.0
    assert model["updates"][0]["params"][0]["new"] == pytest.approx(0.25 - 0.1 * 2.0)
    assert "w = 0.25" in data["explanations"][0]["heading"]
    view.set(w=-0.5)
    assert json.loads(view.data)["explanations"][0]["model"]["chains"][0]["grad"] == -4.0
    with pytest.raises(ChainruleError, match="no slider 'v'"):
        view.set(v=1.0)


def test_widget_reports_a_failing_model_and_keeps_the_last_view():
    pytest.importorskip("anywidget")

    def model(w=0.5):
        if w > 0.9:
            raise ValueError("w is too big for this model")
        return _model(w)
    view = cr.explain.widget(model)                 # every numeric default becomes a slider
    assert view.sliders[0]["name"] == "w" and view.sliders[0]["min"] < 0.5 < view.sliders[0]["max"]
    before = view.data
    view.set(w=0.95)
    assert view.error == "ValueError: w is too big for this model" and view.data == before
    view.set(w=0.2)
    assert view.error == "" and view.explanation.grad("w") == pytest.approx(1.6)


def test_widget_without_anywidget_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)           # import anywidget fails
    from chainrule.explain.explorer.widget import AnywidgetMissing
    with pytest.raises(AnywidgetMissing, match=re.escape('pip install "chainrule[notebook]"')):
        cr.explain.widget(_model)
    assert issubclass(AnywidgetMissing, ImportError) and issubclass(AnywidgetMissing, ChainruleError)


def test_widget_checks_its_sliders():
    with pytest.raises(ChainruleError, match="no argument 'v'"):
        cr.explain.widget(_model, {"v": (0, 1)})
    with pytest.raises(ChainruleError, match="low < high"):
        cr.explain.widget(_model, {"w": (1, 0)})
    with pytest.raises(ChainruleError, match="nothing to put on a slider"):
        cr.explain.widget(lambda: _model())
    with pytest.raises(ChainruleError, match="'x' has no default"):
        cr.explain.widget(lambda w=0.5, *, x: _model(w, x))


# ---------------------------------------------------------------- in a real browser
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--disable-extensions", "--window-size=1400,1000",
               "--hide-scrollbars"]


def _find_browser():
    """(chromium, chromedriver) installed on this machine, or a reason why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[dev]')"
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        return None, ("no chromium/chromedriver on this machine (apt-get install chromium "
                      "chromium-driver; .ci/run installs them)")
    return (chrome, driver), None


@pytest.fixture(scope="module")
def browser():
    found, why = _find_browser()
    if found is None:
        print(f"\nexplorer browser tests skipped: {why}", file=sys.stderr)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="chainrule-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(found[1]), options=options)
    except Exception as exc:                     # a browser that cannot start here
        shutil.rmtree(profile, ignore_errors=True)
        print(f"\nexplorer browser tests skipped: chromium did not start: {exc}", file=sys.stderr)
        pytest.skip(f"chromium did not start: {exc}")
    driver.set_script_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer_shots")
    yield folder
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy(png, SHOTS / png.name)
    except OSError:
        pass


SHOWN = ("Array.from(document.querySelectorAll('#panel .num')).map(e => [e.dataset.role, "
         "JSON.parse(e.dataset.v), e.textContent, e.dataset.param || null])")


class Page:
    """One explorer page open in the browser, with the checks every test ends with."""

    def __init__(self, driver, text, folder, name, is_explorer=True):
        self.driver = driver
        self.path = pathlib.Path(folder) / f"{name}.html"
        self.path.write_text(text, encoding="utf-8")
        self.url = self.path.as_uri()
        driver.get_log("browser")                # forget what earlier pages logged
        driver.get_log("performance")
        start = time.perf_counter()
        driver.get(self.url)
        self.wall = time.perf_counter() - start
        self.load_ms = driver.execute_script(
            "var n = performance.getEntriesByType('navigation')[0];"
            "return n ? n.loadEventEnd - n.startTime : null;")
        if is_explorer:
            assert driver.execute_script("return !!window.chainruleExplorer && !!window.katex")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def click(self, css):
        self.driver.find_element("css selector", css).click()

    def shown(self):
        """Every number in the step panel: (role, exact value, text shown, param)."""
        return self.js("return " + SHOWN)

    def assert_clean(self):
        """No request left the page, nothing was logged as an error, KaTeX typeset all."""
        resources = self.js("return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources == [], resources
        # every request this document made (Chrome's own pages, e.g. the first tab's
        # chrome://new-tab-page, log theirs too: they are not the page's)
        requests = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            params = msg.get("params", {})
            if msg["method"] == "Network.requestWillBeSent" and \
                    params.get("documentURL") == self.url:
                requests.append(params["request"]["url"])
            elif msg["method"] == "Network.webSocketCreated":
                requests.append(params.get("url"))
        # the page itself, and its inlined fonts (data: URLs, decoded in memory), nothing else
        assert [u for u in requests if not u.startswith("data:")] == [self.url], requests
        logged = [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert logged == [], logged
        assert self.js("return document.querySelectorAll('.katex-error, .tex-failed').length") == 0


def _floats(x):
    if isinstance(x, list):
        return [_floats(v) for v in x]
    return float(x) if isinstance(x, str) else x


def same(a, b, exact=True):
    a, b = np.asarray(_floats(a), dtype=np.float64), np.asarray(_floats(b), dtype=np.float64)
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=True) if exact else
                np.allclose(a, b, rtol=1e-12, atol=1e-15, equal_nan=True))


def shown_matches(text, value, decimals=None):
    """The text a learner reads agrees with the value to the digits it shows."""
    nums = [float(t) for t in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]
    want = np.asarray(_floats(value), dtype=np.float64).ravel()
    if decimals is not None:
        want = np.round(want, decimals)
    if len(nums) != want.size:
        return False
    return all(math.isclose(n, w, rel_tol=5e-6, abs_tol=1e-12) for n, w in zip(nums, want))


def walk_all_steps(page, m):
    """Step through the whole page with the ▶ button and check every number against the
    model; returns how many steps there were."""
    nodes = {n["id"]: n for n in m["nodes"]}
    edges = m["edges"]
    gd = m["settings"]["grad_decimals"]
    steps = expected_steps(m)
    got = [(s["kind"], s["edge"] if s["kind"] == "backward" else
            s["index"] if s["kind"] == "update" else s["node"])
           for s in page.js("return window.chainruleExplorer.steps()")]
    assert got == steps                                   # the engine's real order
    page.click("#first")
    nxt = page.driver.find_element("css selector", "#next")
    contributions = {}
    for i, (kind, what) in enumerate(steps):
        if 0 < i <= 3:
            nxt.click()                 # a real click on ▶ (the rest press it from the page)
        step, shown, current, back = page.js(
            ("document.getElementById('next').click();" if i > 3 else "") +
            "return [document.getElementById('counter').dataset.step, " + SHOWN + ","
            " Array.from(document.querySelectorAll('.node.current')).map(e => Number(e.dataset.id)),"
            " document.querySelectorAll('.link.back').length];")
        assert step == str(i)
        roles = {}
        for role, v, text, param in shown:
            roles.setdefault(role, []).append((v, text, param))
        if kind == "forward":
            n = nodes[what]
            assert same(roles["value"][0][0], n["value"]) and shown_matches(roles["value"][0][1], n["value"])
            inputs = [v for v, _, _ in roles.get("input", [])]
            assert len(inputs) == len(n["inputs"])
            assert all(same(v, nodes[j]["value"]) for v, j in zip(inputs, n["inputs"]))
            assert current == [what]                      # the node being computed is lit
        elif kind == "seed":
            assert same(roles["seed"][0][0], nodes[what]["grad"])
        elif kind == "backward":
            e = edges[what]
            up, contrib = roles["upstream"][0], roles["contribution"][0]
            assert same(up[0], nodes[e["to"]]["grad"]) and shown_matches(up[1], nodes[e["to"]]["grad"], gd)
            assert same(contrib[0], e["passed"]) and shown_matches(contrib[1], e["passed"], gd)
            if e["local"] is not None:
                assert same(roles["local"][0][0], e["local"])
                assert shown_matches(roles["local"][0][1], e["local"])
                if not isinstance(e["local"], list) and gd is None:     # upstream × local
                    assert math.isclose(_floats(nodes[e["to"]]["grad"]) * e["local"],
                                        _floats(e["passed"]), rel_tol=1e-9, abs_tol=1e-15)
            else:
                assert "local" not in roles
            mine = contributions.setdefault(e["from"], [])
            mine.append(e["passed"])
            users = sum(1 for ed in edges if ed["from"] == e["from"] and ed["passed"] is not None)
            if users > 1:                                   # the running sum at a shared value
                partial = np.sum([np.asarray(_floats(p)) for p in mine], axis=0)
                assert same(roles["running"][0][0], partial, exact=False)
                if len(mine) == users:
                    assert same(roles["total"][0][0], nodes[e["from"]]["grad"])
                    assert same(partial, nodes[e["from"]]["grad"], exact=False)
            else:
                assert "running" not in roles
            assert back == 1                              # the edge the gradient crosses
        else:
            upd = m["updates"][what]
            for p in upd["params"]:
                for role in ("old", "grad", "new"):
                    vals = [v for v, _, param in roles[role] if param == str(p["param"])]
                    assert len(vals) == 1 and same(vals[0], p[role]), (role, p["name"])
                for key, value in p["state"].items():
                    vals = [v for v, _, param in roles.get(f"state:{key}", []) if param == str(p["param"])]
                    assert len(vals) == 1 and same(vals[0], value)
    # the keyboard: ← goes back a step, → forward again
    from selenium.webdriver.common.keys import Keys
    body = page.driver.find_element("tag name", "body")
    body.send_keys(Keys.ARROW_LEFT)
    assert page.js("return window.chainruleExplorer.state.step") == len(steps) - 2
    body.send_keys(Keys.ARROW_RIGHT)
    assert page.js("return window.chainruleExplorer.state.step") == len(steps) - 1
    return len(steps)


def test_seed_004_every_step_in_the_browser(browser, shots, tmp_path):
    ex = seed_004()
    parts = [(h, p) for h, p in ex.parts if hasattr(p, "blocks")]
    text = explorer.page(parts)
    page = Page(browser, text, tmp_path, "seed-004")
    print(f"\nseed-004 page: {len(text.encode())} bytes, loaded in {page.load_ms:.0f} ms "
          f"(driver.get {page.wall:.2f} s)", file=sys.stderr)
    assert page.load_ms is not None and page.load_ms < 10_000
    m = parts[0][1].to_dict()
    n = walk_all_steps(page, m)
    assert n == 15 + 1 + 12 + 1          # values, the seed, edges that carried a gradient, update
    # a backward step in the middle, for the screenshot: z_o → w_o's product
    k = next(i for i, s in enumerate(expected_steps(m))
             if s[0] == "backward" and m["edges"][s[1]]["from"] == 6)
    page.js("window.chainruleExplorer.go(arguments[0])", k)
    edge = m["edges"][expected_steps(m)[k][1]]
    assert [r[1] for r in page.shown() if r[0] == "contribution"] == [edge["passed"]]
    browser.save_screenshot(str(shots / "1-backward-step.png"))
    # the second derivation of the seed (a 2-2-2-2 network) is one menu choice away
    page.js("var s = document.getElementById('which'); s.value = '1';"
            "s.dispatchEvent(new Event('change'));")
    walk_all_steps(page, parts[1][1].to_dict())
    page.assert_clean()


def test_clicking_a_parameter_highlights_its_paths(browser, shots, tmp_path):
    rep = seed_004_rep()
    page = Page(browser, rep.html(), tmp_path, "seed-004-click")
    page.click('.node[data-id="0"]')                      # w_h
    on = page.js("return Array.from(document.querySelectorAll('.node.on-path'))"
                 ".map(e => Number(e.dataset.id)).sort((a, b) => a - b)")
    want = sorted(rep.graph(highlight="w_h")._path_values())
    assert on == want == [0, 2, 4, 5, 7, 9, 10, 12, 14, 16]
    lit = page.js("return Array.from(document.querySelectorAll('.link.on-path'))"
                  ".map(e => e.dataset.link)")
    assert len(lit) == len(want) - 1                      # one chain: w_h → … → Loss
    m = rep.to_dict()
    chain = m["chains"][0]
    card = page.js("""var c = document.getElementById('chain'); return [c.dataset.param,
        Array.from(c.querySelectorAll('.num')).map(e => [e.dataset.role, JSON.parse(e.dataset.v), e.textContent])];""")
    assert card[0] == "0"
    roles = {}
    for role, v, text in card[1]:
        roles.setdefault(role, []).append((v, text))
    assert [v for v, _ in roles["factor"]] == chain["paths"][0]["values"]
    assert roles["chain"][0] == (chain["written"], "-0.00373525")
    assert same(roles["grad"][0][0], chain["grad"])
    assert roles["new"][0][0] == m["updates"][0]["params"][0]["new"]
    assert roles["new"][0][1] == "0.201867625"            # w_h(1), the seed's number
    # focus on the parameter: only its paths (and their inputs) stay on the graph
    page.js("var s = document.getElementById('focus'); s.value = '6'; s.dispatchEvent(new Event('change'));")
    drawn = page.js("return Array.from(document.querySelectorAll('.node')).map(e => Number(e.dataset.id))")
    assert 0 not in drawn and {6, 7, 9, 10, 16} <= set(drawn)
    page.js("var s = document.getElementById('focus'); s.value = '0'; s.dispatchEvent(new Event('change'));")
    browser.save_screenshot(str(shots / "2-parameter-paths.png"))
    page.assert_clean()


def test_worksheet_blanks_right_and_wrong(browser, shots, tmp_path):
    from selenium.webdriver.support.ui import Select
    rep = seed_004_rep()
    ws = rep.exercise(hide="chain")
    page = Page(browser, rep.html(), tmp_path, "seed-004-worksheet")
    page.click('.tab[data-tab="worksheet"]')
    Select(browser.find_element("css selector", "#hide")).select_by_value("chain")
    blanks = browser.find_elements("css selector", "input.blank")
    assert len({b.get_attribute("data-blank") for b in blanks}) == len(ws.blanks) == 8
    first = {b.get_attribute("data-blank"): b for b in reversed(blanks)}   # first of each
    right = "-0.00374"                                    # ∂Loss/∂w_h = -0.00373525 to 3 s.f.
    wrong = "0.5"
    first["1"].send_keys(right)
    first["3"].send_keys(wrong)
    # the same blank elsewhere on the sheet follows what was typed
    assert {b.get_attribute("value") for b in blanks if b.get_attribute("data-blank") == "1"} == {right}
    page.click("#check")
    verdict = page.js("var r = {}; document.querySelectorAll('.verdict').forEach(e => "
                      "r[e.dataset.blank] = e.dataset.ok); return r;")
    py = rep.exercise(hide="chain").check({1: float(right), 3: float(wrong)})
    for label, k in ws.blanks.items():
        assert verdict[str(k)] == ("true" if py.verdicts[label].ok else "false"), label
    assert verdict["1"] == "true" and verdict["3"] == "false"
    assert page.js("return document.getElementById('score').textContent") == "1 of 8 right"
    # the page's rule is the worksheet's: agree on answers near the tolerance, for every blank
    for label, k in ws.blanks.items():
        key = ws.answers[label]
        for answer in (key, key * 1.0004, key * 1.004, round(key, 2), key * 1.02, -key):
            js = page.js("return window.chainruleExplorer.judge('chain', arguments[0], arguments[1])",
                         label, repr(answer))
            assert js["ok"] == ws.check({label: answer}).verdicts[label].ok, (label, answer, js)
    browser.save_screenshot(str(shots / "3-worksheet.png"))
    page.assert_clean()


def test_222_network_every_step_layers_and_checks(browser, tmp_path):
    rep = net_222()
    m = rep.to_dict()
    page = Page(browser, rep.html(), tmp_path, "net-222")
    walk_all_steps(page, m)
    assert page.js("return document.querySelector('[data-role=verification]').textContent") == \
        f"✓ {len(m['verification']['checks'])} local derivatives checked"
    assert page.js("return document.querySelectorAll('.echeck.good').length") > 0
    assert page.js("return document.querySelectorAll('.echeck.bad').length") == 0
    # the update step shows SGD's momentum buffers
    page.click("#last")
    state = [r for r in page.shown() if r[0] == "state:momentum_buffer"]
    assert len(state) == 4 and all(same(v, p["state"]["momentum_buffer"]) for (_, v, _, _), p in
                                   zip(state, m["updates"][0]["params"]))
    # the layer view: δ of each layer, and Wᵀδ sent back, from the engine
    page.click('.tab[data-tab="layers"]')
    deltas = page.js("return Array.from(document.querySelectorAll('.lcol')).map(c => [Number(c.dataset.layer),"
                     " JSON.parse(c.querySelector('[data-role=delta]').dataset.v)])")
    assert sorted(deltas) == sorted([L["index"], L["delta"]] for L in m["layers"])
    wtd = page.js("return JSON.parse(document.querySelector('.lcol[data-layer=\"2\"] [data-role=wtdelta]').dataset.v)")
    layer2 = next(L for L in m["layers"] if L["index"] == 2)
    assert wtd == m["nodes"][layer2["x"]]["grad"]
    W = np.array(m["nodes"][layer2["W"]]["value"])
    assert np.allclose(W.T @ np.array(layer2["delta"]), wtd)          # it is Wᵀδ
    # collapsing by layer draws each layer as one box
    page.click('.tab[data-tab="graph"]')
    page.click("#collapse")
    groups = page.js("return Array.from(document.querySelectorAll('.node.group')).map(e => e.textContent)")
    assert any("Layer 1" in g for g in groups) and any("Layer 2" in g for g in groups)
    page.click('.tab[data-tab="derivation"]')
    page.assert_clean()


def test_running_sum_at_a_value_used_twice(browser, tmp_path):
    ex = build("seed-002")
    rep = ex.explanations()[1]                      # a = σ(z) feeds z' and z''
    m = rep.to_dict()
    page = Page(browser, rep.html(), tmp_path, "seed-002")
    walk_all_steps(page, m)
    a = next(n["id"] for n in m["nodes"] if n["name"] == "a")
    k = max(i for i, s in enumerate(expected_steps(m)) if s[0] == "backward" and m["edges"][s[1]]["from"] == a)
    page.js("window.chainruleExplorer.go(arguments[0])", k)
    text = page.js("return document.querySelector('#panel .running').textContent")
    assert "2 of 2 so far" in text and "via z'" in text and "via z''" in text
    page.assert_clean()


def test_every_seed_derivation_renders_every_step_and_tab(browser, tmp_path):
    from chainrule.explain.seeds import SEEDS
    parts = []
    for name in sorted(SEEDS):
        for rounding in (None, 2):
            ex = build(name, round=rounding, verify=True)
            parts += [(f"{name} round={rounding}: {h}", p) for h, p in ex.parts if hasattr(p, "blocks")]
    page = Page(browser, explorer.page(parts), tmp_path, "all-seeds")
    got = page.js("""
        var out = [], sel = document.getElementById('which'), X = window.chainruleExplorer;
        for (var i = 0; i < sel.options.length; i++) {
          sel.value = String(i); sel.dispatchEvent(new Event('change'));
          var n = X.steps().length;
          for (var k = -1; k < n; k++) X.go(k);
          ['layers', 'worksheet', 'derivation', 'graph'].forEach(function (t) { X.setTab(t); });
          out.push([n, X.payload().explanations[i].heading]);
        }
        return out;""")
    assert [h for _, h in got] == [h for h, _ in parts]
    assert [n for n, _ in got] == [len(expected_steps(p.to_dict())) for _, p in parts]
    page.assert_clean()


def test_widget_front_end_moves_a_slider_and_shows_the_new_run(browser, tmp_path):
    """widget.js in the browser with a stand-in for anywidget's model: the slider sets
    `values`; the data the kernel sends back (here: the widget's own Python functions,
    re-running the engine) reaches the page, which keeps its step and shows the new numbers."""
    from chainrule.explain.explorer import widget as W
    specs = W.slider_specs(_model, {"w": (-1.0, 1.0, 0.05)})
    values = {s["name"]: s["value"] for s in specs}
    options = {"round": None, "verify": False, "lr": 0.1}
    data = W.payload(W.run_model(_model, values, options), values)
    shell = explorer.page([json.loads(data)["explanations"][0]], embedded=True)
    esm = explorer._asset("widget.js").replace("export default { render };",
                                               "window.__widget = { render };")
    assert "window.__widget" in esm
    state = {"page": shell, "data": data, "sliders": specs, "values": values, "error": "",
             "height": 560}
    harness = ("<!DOCTYPE html><html><body><div id='w'></div><script>\n"
               "var state = " + explorer.script_json(state) + ", listeners = {}, saved = [];\n"
               "var model = {get: k => state[k], set: (k, v) => { state[k] = v; },\n"
               "  save_changes: () => saved.push(JSON.parse(JSON.stringify(state.values))),\n"
               "  on: (ev, f) => { (listeners[ev] = listeners[ev] || []).push(f); }};\n"
               "window.kernel = {saved: saved, push: (k, v) => { state[k] = v;\n"
               "  (listeners['change:' + k] || []).forEach(f => f()); }};\n"
               "</script><script>" + esm + "</script><script>\n"
               "window.__widget.render({model: model, el: document.getElementById('w')});\n"
               "</script></body></html>")
    page = Page(browser, harness, tmp_path, "widget", is_explorer=False)
    frame = browser.find_element("css selector", "iframe")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    m0 = json.loads(data)["explanations"][0]["model"]
    k = max(i for i, s in enumerate(expected_steps(m0)) if s[0] == "backward")   # into w
    try:
        browser.switch_to.frame(frame)
        deadline = time.time() + 10
        while not browser.execute_script("return !!window.chainruleExplorer") and time.time() < deadline:
            time.sleep(0.05)
        browser.execute_script("window.chainruleExplorer.go(arguments[0])", k)
        before = dict((r[0], r[1]) for r in browser.execute_script("return " + SHOWN))
        assert before["upstream"] == m0["nodes"][m0["edges"][expected_steps(m0)[k][1]]["to"]]["grad"]
    finally:
        browser.switch_to.default_content()
    # the learner drags w to 0.25
    page.js("var r = document.querySelector('input[type=range]'); r.value = '0.25';"
            "r.dispatchEvent(new Event('change'));")
    sent = page.js("return window.kernel.saved")
    assert sent[-1] == {"w": 0.25}
    new = W.payload(W.run_model(_model, sent[-1], options), sent[-1])     # the kernel's run
    page.js("window.kernel.push('data', arguments[0])", new)
    m1 = json.loads(new)["explanations"][0]["model"]
    assert m1["chains"][0]["grad"] == 2.0
    try:
        browser.switch_to.frame(frame)
        deadline = time.time() + 10
        while time.time() < deadline and browser.execute_script(
                "return window.chainruleExplorer.payload().explanations[0].model.chains[0].grad") != 2.0:
            time.sleep(0.05)
        assert browser.execute_script("return window.chainruleExplorer.state.step") == k
        after = dict((r[0], r[1]) for r in browser.execute_script("return " + SHOWN))
        e = m1["edges"][expected_steps(m1)[k][1]]
        assert after["upstream"] == m1["nodes"][e["to"]]["grad"] and after["contribution"] == e["passed"]
        assert after["upstream"] != before["upstream"]
        assert "w = 0.25" in browser.execute_script("return document.querySelector('h1.title').textContent")
        logged = [x for x in browser.get_log("browser") if x["level"] in ("SEVERE", "WARNING")]
        assert logged == [], logged
    finally:
        browser.switch_to.default_content()
