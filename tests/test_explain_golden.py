"""The seed examples' text and Markdown outputs, compared with checked-in golden files.

To regenerate after an intended change of the output (then review the diff before
committing):  CHAINRULE_UPDATE_GOLDEN=1 python -m pytest tests/test_explain_golden.py
"""
import os
import pathlib

import pytest

from chainrule.explain.seeds import build

GOLDEN = pathlib.Path(__file__).parent / "golden"
CASES = [("seed-000", {}), ("seed-001", {}), ("seed-002", {}), ("seed-003", {}),
         ("seed-004", {}), ("seed-004", {"round": 2})]


def _file(name, kwargs, ext):
    suffix = "".join(f"-{k}{v}" for k, v in sorted(kwargs.items()))
    return GOLDEN / f"{name}{suffix}.{ext}"


@pytest.mark.parametrize("fmt,ext", [("text", "txt"), ("markdown", "md")])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[n + "".join(f"-{k}{v}" for k, v in kw.items())
                                                    for n, kw in CASES])
def test_golden(name, kwargs, fmt, ext):
    got = build(name, verify=True, **kwargs).render(fmt)
    path = _file(name, kwargs, ext)
    if os.environ.get("CHAINRULE_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; see this module's docstring"
    assert got == path.read_text(encoding="utf-8")
