"""The table of primitives in docs/conventions.md, generated from the registry.

`primitive_table()` writes one Markdown row per entry of `chainrule.ops.REGISTRY`, from the
entry's fields only: where it is defined, its input names, `formula`, `derivs`, the flags
`elementwise`/`linear`/`rounded` (a `rounded` rule of the operands shows as "rounded (for
some operands)") and `saves`. The doc holds the table between two marker lines, and
tests/test_primitives.py checks it byte for byte against this function.

Refresh the doc after changing a registry entry:

    python -m chainrule.ops.doc_table --write      # rewrite the table in docs/conventions.md
    python -m chainrule.ops.doc_table --check      # exit status 1 when the doc is stale
    python -m chainrule.ops.doc_table              # print the table

>>> print(primitive_table().splitlines()[2])
| `add` | `elementwise.py` | a, b | a + b | a: 1; b: 1 | elementwise, linear | nothing |
"""
import argparse
import pathlib
import sys

from . import REGISTRY

BEGIN = ("<!-- BEGIN primitive table: generated from the registry by "
         "`python -m chainrule.ops.doc_table --write`; do not edit by hand -->")
END = "<!-- END primitive table -->"
DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "conventions.md"
REFRESH = "python -m chainrule.ops.doc_table --write"

# The order of the table's groups (the files of src/chainrule/ops/ that define primitives);
# a module not named here follows them, by name. Inside a group: definition order.
MODULE_ORDER = ("elementwise", "linalg", "reductions", "shape", "fused", "conv", "losses",
                "special")
HEADER = ("| primitive | defined in `ops/` | inputs | forward | local derivative per input "
          "| flags | saves |\n|---|---|---|---|---|---|---|")
FLAGS = ("elementwise", "linear", "rounded")


def defining_module(prim):
    """The `chainrule.ops` submodule that defines the entry ("elementwise", ...): the module
    of its rules (its forward may be a NumPy function), checked against the module's names."""
    rules = [prim.vjps] if prim.variadic else [r for r in prim.vjps if r is not None]
    candidates = [getattr(f, "__module__", None) for f in rules + [prim.forward]]
    candidates = [m for m in candidates if m and m.startswith(__package__ + ".")]
    for module in candidates:   # prefer a module that holds the entry as one of its names
        if any(v is prim for v in vars(sys.modules[module]).values()):
            return module.rsplit(".", 1)[1]
    return candidates[0].rsplit(".", 1)[1] if candidates else "?"


def _cell(text):
    return text.replace("|", "\\|")


def _inputs(prim):
    return "x₁, x₂, …" if prim.variadic else ", ".join(prim.inputs)


def _derivs(prim):
    if prim.variadic or len(prim.inputs) == 1:
        return "; ".join(prim.derivs)
    return "; ".join(f"{name}: {d}" for name, d in zip(prim.inputs, prim.derivs))


def _flag(prim, field):
    value = getattr(prim, field)
    if callable(value):   # a rule of the operands (rounded for pow)
        return f"{field} (for some operands)"
    return field if value else None


def _row(prim):
    flags = ", ".join(f for f in map(lambda f: _flag(prim, f), FLAGS) if f) or "—"
    cells = [f"`{prim.name}`", f"`{defining_module(prim)}.py`", _inputs(prim), prim.formula,
             _derivs(prim), flags, ", ".join(prim.saves) or "nothing"]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _group_key(module):
    if module in MODULE_ORDER:
        return (0, MODULE_ORDER.index(module), "")
    return (1, 0, module)


def primitive_table(registry=None):
    """The Markdown table of every registered primitive (no trailing newline)."""
    registry = REGISTRY if registry is None else registry
    prims = list(registry.values())
    position = {id(p): i for i, p in enumerate(prims)}
    prims.sort(key=lambda p: (_group_key(defining_module(p)), position[id(p)]))
    return "\n".join([HEADER] + [_row(p) for p in prims])


def _span(text):
    """(start, end): the part of `text` between the marker lines, without the markers."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError("the doc needs exactly one pair of primitive-table markers:\n"
                         f"{BEGIN}\n{END}")
    start = text.index(BEGIN) + len(BEGIN) + 1
    end = text.index(END)
    if end < start:
        raise ValueError("the primitive table's END marker comes before its BEGIN marker")
    return start, end


def table_in(text):
    """The table as written between the markers of a doc's text (no trailing newline)."""
    start, end = _span(text)
    return text[start:end].rstrip("\n")


def with_table(text, table=None):
    """`text` with the part between the markers replaced by `table` (default: the registry's)."""
    start, end = _span(text)
    return text[:start] + (primitive_table() if table is None else table) + "\n" + text[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chainrule.ops.doc_table",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in the doc")
    parser.add_argument("--check", action="store_true", help="exit 1 when the doc is stale")
    parser.add_argument("--doc", type=pathlib.Path, default=DOC, help=f"default: {DOC}")
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(primitive_table())
        return 0
    text = args.doc.read_text("utf-8")
    new = with_table(text)
    if args.check:
        if new != text:
            print(f"{args.doc}: the primitive table is stale; refresh it with `{REFRESH}`",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.doc.write_text(new, "utf-8")
        print(f"{args.doc}: primitive table rewritten ({len(REGISTRY)} primitives)")
    else:
        print(f"{args.doc}: primitive table already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
