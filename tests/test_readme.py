"""The README's promises, run: its Python blocks execute in order, its printed results are
what the code prints, and CI runs exactly the README's test command."""
import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_python_blocks_run_and_print_what_the_readme_says():
    namespace, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in _python_blocks():
            exec(compile(block, "README.md", "exec"), namespace)
    out = printed.getvalue()
    assert "tensor(0.25)" in out                       # the first gradient
    assert "∂h5/∂w = ∂h5/∂h4 · ∂h4/∂h3 · ∂h3/∂h2 · ∂h2/∂h1 · ∂h1/∂w = -0.25 × 1 × 1 × 1 × (-1) = 0.25" in out
    assert namespace["model"][0].weight.grad is not None   # the training loop really trained
    assert "True cpu [9.0, -18.0]" in out             # the device example's gradient came home


def test_ci_runs_the_readme_test_command():
    command = re.search(r"Run the tests.*?\n\n    (.+?)\n", README, re.S).group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines(), f"{command!r} is not a line of .ci/run"
