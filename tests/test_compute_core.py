"""The compute core (ops, the engine, grad mode, optimizers) takes its array module from
`backend` and never imports NumPy itself, so a second backend plugs in at one place."""
import ast
import pathlib

import chainrule

SRC = pathlib.Path(chainrule.__file__).parent
CORE = ["autograd.py", "grad_mode.py", "graph_gc.py", "ops", "optim"]


def _core_files():
    for entry in CORE:
        path = SRC / entry
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []


def _numpy_imports(path):
    """(line, statement) of every import of numpy in the file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found += [(node.lineno, n) for n in names if n == "numpy" or n.startswith("numpy.")]
    return found


def test_the_compute_core_imports_no_numpy():
    bad = {str(p.relative_to(SRC)): hits for p in _core_files() if (hits := _numpy_imports(p))}
    assert not bad, (f"these compute-core modules import NumPy directly: {bad}; use "
                     "`from .. import backend` and `np = backend.np` instead")


def test_the_scan_sees_the_core_and_catches_an_import(tmp_path):
    assert len(list(_core_files())) >= 15
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import numpy.linalg\n    from numpy import add\n")
    assert [n for _, n in _numpy_imports(probe)] == ["numpy.linalg", "numpy"]
