"""Documentation that runs, so it cannot go stale.

1. Every public function and class of the user-facing modules has a docstring with a `>>>`
   example (DESIGN.md: "Public functions carry docstrings with a runnable example").
2. Every docstring example in the chainrule package runs under doctest, one test per module.
   This is the one place docstring examples are run.
3. The ```python blocks of docs/tutorial.md run in order, in one namespace; a ```text block
   right after a python block is that block's printed output, compared as doctest compares
   (`...` stands for a part that changes from run to run, such as a time).

`python tests/test_docs.py` rewrites the tutorial's output blocks from a fresh run.
"""
import contextlib
import doctest
import importlib
import inspect
import io
import os
import pathlib
import pkgutil
import re
import sys

import pytest

import chainrule as cr

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
TUTORIAL = pathlib.Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"

# The modules users import; every public function and class they expose needs an example.
PUBLIC_MODULES = ["chainrule", "chainrule.nn", "chainrule.nn.functional", "chainrule.nn.init",
                  "chainrule.optim", "chainrule.optim.lr_scheduler", "chainrule.data",
                  "chainrule.io", "chainrule.train", "chainrule.explain"]


# ---------------------------------------------------------------- 1. completeness

def _own_doc(obj):
    """The object's own docstring (a class does not count its base class's)."""
    return obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__


def _public_objects(module):
    for name in dir(module):
        obj = getattr(module, name)
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if (getattr(obj, "__module__", None) or "").split(".")[0] == "chainrule":
            yield name, obj


def test_public_functions_and_classes_have_docstring_examples():
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in _public_objects(module):
            if ">>>" not in (_own_doc(obj) or ""):
                missing.append(f"{module_name}.{name}")
    assert not missing, (f"{len(missing)} public names have no docstring with a >>> example: "
                         + ", ".join(missing))


def test_completeness_check_sees_generated_functions():
    # the unary ops are made in a loop; the check must look at what they really carry
    assert dict(_public_objects(cr))["exp"] is cr.exp
    assert ">>> y = cr.exp(x)" in _own_doc(cr.exp)


# ---------------------------------------------------------------- 2. docstring examples

def _package_modules():
    names = ["chainrule"] + [m.name for m in pkgutil.walk_packages(cr.__path__, "chainrule.")]
    return sorted(names)


def _doctests(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module.__name__) if t.examples]


DOCTEST_MODULES = [name for name in _package_modules()
                   if _doctests(importlib.import_module(name))]
# Examples that show a NaN on purpose, and the NumPy warning that comes with it.
EXPECTED_WARNINGS = {"chainrule.anomaly": "ignore:divide by zero encountered:RuntimeWarning"}


def test_doctests_found_across_the_package():
    assert len(DOCTEST_MODULES) >= 30 and "chainrule.ops.elementwise" in DOCTEST_MODULES


@pytest.mark.parametrize("module_name", [
    pytest.param(name, marks=pytest.mark.filterwarnings(EXPECTED_WARNINGS[name]))
    if name in EXPECTED_WARNINGS else name for name in DOCTEST_MODULES])
def test_docstring_examples(module_name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for test in _doctests(importlib.import_module(module_name)):
        cr.manual_seed(0)                       # each docstring starts from the same state
        cr.set_default_dtype(cr.float32)
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)


# ---------------------------------------------------------------- 3. the tutorial

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
# Run times, and the trained network's last digits (another CPU's BLAS may round differently;
# the accuracy itself is checked against a floor below).
VOLATILE = [(re.compile(r"(in )\d+(\.\d+)?s\b"), r"\1...s"),
            (re.compile(r"(accuracy: )\d+\.\d+%"), r"\1...%"),
            (re.compile(r"(\(loss )\d+\.\d+\)"), r"\1...)")]


def tutorial_blocks(text):
    """[(code, expected output or None, line)] for each ```python block, in order."""
    fences = list(FENCE.finditer(text))
    blocks = []
    for i, m in enumerate(fences):
        if m.group(1) != "python":
            continue
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        follows = nxt is not None and nxt.group(1) == "text" and \
            not text[m.end():nxt.start()].strip()
        line = text.count("\n", 0, m.start()) + 2
        blocks.append((m.group(2), nxt.group(2) if follows else None, line))
    return blocks


def run_tutorial(blocks):
    """Run the blocks in one namespace; yield (line, what each printed)."""
    namespace = {"__name__": "tutorial"}
    for code, _, line in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile("\n" * (line - 1) + code, str(TUTORIAL), "exec"), namespace)
        yield line, out.getvalue()


def test_tutorial_code_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # the training run writes its files here
    blocks = tutorial_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    checker = doctest.OutputChecker()
    printed = []
    for (code, expected, _), (line, got) in zip(blocks, run_tutorial(blocks)):
        printed.append(got)
        if expected is None:
            assert not got, f"docs/tutorial.md:{line}: the block prints, but no ```text block " \
                            f"shows it; run `python tests/test_docs.py`. It printed:\n{got}"
        else:
            assert checker.check_output(expected, got, FLAGS), (
                f"docs/tutorial.md:{line}: the output shown is not what the code prints; run "
                f"`python tests/test_docs.py` to refresh it.\nshown:\n{expected}\nprinted:\n{got}")
    accuracy = re.search(r"test accuracy: (\d+\.\d+)%", "".join(printed))
    assert accuracy and float(accuracy.group(1)) >= 95.0, "the tutorial's training run fell short"


def test_tutorial_blocks_are_found():
    text = "x\n```python\nprint(1)\n```\n\n```text\n1\n```\n```python\ny = 2\n```\n"
    assert tutorial_blocks(text) == [("print(1)\n", "1\n", 3), ("y = 2\n", None, 10)]


def update_tutorial():
    """Rewrite the output block after each printing python block with what it prints now."""
    import tempfile
    text = TUTORIAL.read_text(encoding="utf-8")
    cr.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            outputs = dict(run_tutorial(tutorial_blocks(text)))
        finally:
            os.chdir(cwd)
    pieces, pos = [], 0
    fences = list(FENCE.finditer(text))
    for i, m in enumerate(fences):
        if m.group(1) != "python":
            continue
        line = text.count("\n", 0, m.start()) + 2
        got = outputs[line]
        for pattern, repl in VOLATILE:
            got = pattern.sub(repl, got)
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        pieces.append(text[pos:m.end()])
        pos = m.end()
        if nxt is not None and nxt.group(1) == "text" and not text[m.end():nxt.start()].strip():
            pos = nxt.end()                     # drop the old output block
        if got:
            pieces.append(f"\n\n```text\n{got.rstrip()}\n```")
    pieces.append(text[pos:])
    TUTORIAL.write_text("".join(pieces), encoding="utf-8")


if __name__ == "__main__":
    update_tutorial()
    sys.exit(0)
