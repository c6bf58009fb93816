"""The package is layered, and its imports say so (Core v2, point 4):

    errors → backend → tensor (a value type) → grad mode → engine (autograd) → ops
        → nn / optim / transforms / anomaly → explain → train / CLI

A module imports only from its own layer or below. Read from the source with `ast`, so the
checks see what a module would import, not what happens to be loaded already:

1. the module-level imports of the package have no cycle;
2. no module imports from a layer above its own, at module level or inside a function
   (a lazy import hides a cycle, it does not remove one); tensor.py imports only errors and
   backend; the engine never imports ops;
3. Tensor's operations are bound from one table (ops/methods.py), and the class body in
   tensor.py defines none of the names that table binds (no dead definition overwritten at
   import).
"""
import ast
import inspect
import pathlib

import chainrule
from chainrule.ops import methods
from chainrule.tensor import Tensor

SRC = pathlib.Path(chainrule.__file__).parent
PACKAGE = "chainrule"

# Lowest first. A module of the package that is not listed takes the layer of its nearest
# listed parent package (chainrule.ops.conv is in "ops"); the root package and modules listed
# nowhere are not ranked.
LAYERS = [
    ["errors"],
    ["backend", "devices", "backends", "cuda"],
    ["tensor"],
    ["grad_mode"],
    ["autograd", "graph_gc"],
    ["ops"],
    ["nn", "optim", "transforms", "anomaly", "creation", "check", "io", "data", "amp"],
    ["explain"],
    ["train", "cli", "train_cli", "bench_cli"],
]
RANK = {f"{PACKAGE}.{name}": i for i, names in enumerate(LAYERS) for name in names}
ORDER = " → ".join(" / ".join(names) for names in LAYERS)


# ---------------------------------------------------------------- reading imports

def package_modules(root, package):
    """{module name: path} for every .py file under `root` (the directory of `package`)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package] + parts)] = path
    return modules


def _is_package(name, modules):
    return modules.get(name, pathlib.Path()).name == "__init__.py"


def _parents(name):
    """chainrule.ops.conv -> [chainrule, chainrule.ops]."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve(node, module, modules):
    """The (direct targets, implicitly imported parent packages) of one import statement."""
    if isinstance(node, ast.Import):
        direct = [alias.name for alias in node.names]
    else:
        if node.level:
            here = module if _is_package(module, modules) else module.rpartition(".")[0]
            base = here.split(".")
            base = base[:len(base) - (node.level - 1)]
            base = ".".join(base + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
        # `from P import sub` needs P only as the parent of sub; `from P import name` needs
        # P's __init__ to have bound `name`
        direct = subs + ([base] if len(subs) < len(node.names) else [])
    parents = [p for d in direct for p in _parents(d)]
    if isinstance(node, ast.ImportFrom) and base not in direct:
        parents.append(base)
    return direct, parents


def _walk_imports(tree, module_level):
    """Every Import/ImportFrom node; with `module_level`, only those run when the module is
    imported (not inside a function, nor under `if TYPE_CHECKING:`)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                              ast.Lambda)):
            continue
        if (module_level and isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test)):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports(module, modules, module_level):
    """[(line, imported module)] for the package's own modules that `module` imports.

    An import of chainrule.a.b also imports chainrule.a (its __init__ runs first), except
    from inside chainrule.a, whose __init__ is then already running.
    """
    tree = ast.parse(modules[module].read_text(encoding="utf-8"))
    found = set()
    for node in _walk_imports(tree, module_level):
        direct, parents = _resolve(node, module, modules)
        for target in direct:
            found.add((node.lineno, target))
        for target in parents:
            if not (module == target or module.startswith(target + ".")):
                found.add((node.lineno, target))
    return sorted((line, t) for line, t in found if t in modules and t != module)


def import_graph(root, package):
    modules = package_modules(root, package)
    graph = {m: {} for m in modules}
    for m in modules:
        for line, target in imports(m, modules, module_level=True):
            graph[m].setdefault(target, line)
    return graph


def find_cycles(graph):
    """One cycle (a list of modules, first repeated last) per strongly connected component."""
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []

    def strongconnect(v):  # Tarjan, recursive: the package has well under 1000 modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.add(w)
                if w == v:
                    break
            if len(scc) > 1 or v in graph[v]:
                sccs.append(scc)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    cycles = []
    for scc in sccs:
        start = min(scc)
        # breadth-first from start back to start, inside the component: a shortest cycle
        prev, frontier = {start: None}, [start]
        while frontier and start not in [w for v in frontier for w in graph[v]]:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w in scc and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        last = next(v for v in frontier if start in graph[v])
        path = [last]
        while prev[path[-1]] is not None:
            path.append(prev[path[-1]])
        cycles.append([start] + path[::-1][1:] + [start] if len(path) > 1 else [start, start])
    return cycles


def describe_cycle(cycle, graph, root, package):
    modules = package_modules(root, package)
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        steps.append(f"{_rel(modules[a])}:{graph[a][b]} imports {b}")
    return " → ".join(cycle) + "\n      " + "\n      ".join(steps)


def _rel(path):
    """src/chainrule/... for the package's files; the full path for a probe elsewhere."""
    return path.relative_to(SRC.parent) if path.is_relative_to(SRC.parent) else path


def layer(module):
    for name in [module] + _parents(module)[::-1]:
        if name in RANK:
            return RANK[name]
    return None


# ---------------------------------------------------------------- 1. no cycle

def test_module_level_imports_have_no_cycle():
    graph = import_graph(SRC, PACKAGE)
    cycles = find_cycles(graph)
    assert not cycles, (
        "module-level import cycles in the package:\n  "
        + "\n  ".join(describe_cycle(c, graph, SRC, PACKAGE) for c in cycles)
        + f"\nBreak each one where a lower layer imports a higher one (layers: {ORDER}): move "
        "the code both need down into the lower layer, or bind it from above as ops/methods.py "
        "binds Tensor's methods. A lazy import inside a function does not count as a fix.")


def test_the_cycle_finder_sees_package_inits_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .sub.b import f\n\ndef g():\n    from . import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import a\n")  # a -> sub/__init__ -> a
    (pkg / "sub" / "b.py").write_text("from . import d\nf = 1\n")
    (pkg / "sub" / "d.py").write_text("")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b": 1, "pkg.sub": 1}  # the lazy `import c` is skipped
    assert graph["pkg.sub.b"] == {"pkg.sub.d": 1}  # its own package's __init__ is not an edge
    assert graph["pkg.c"] == {"pkg.a": 1}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub", "pkg.a"]]
    (pkg / "sub" / "__init__.py").write_text("")
    assert find_cycles(import_graph(pkg, "pkg")) == []


# ---------------------------------------------------------------- 2. layer order

def _upward_imports(module_names, modules):
    bad = []
    for m in module_names:
        own = layer(m)
        for line, target in imports(m, modules, module_level=False):
            if own is not None and layer(target) is not None and layer(target) > own:
                bad.append(f"{_rel(modules[m])}:{line} ({m}, layer "
                           f"{LAYERS[own][0]!r}) imports {target} (layer "
                           f"{LAYERS[layer(target)][0]!r})")
    return bad


def test_no_module_imports_from_a_higher_layer():
    modules = package_modules(SRC, PACKAGE)
    bad = _upward_imports(modules, modules)
    assert not bad, (
        "imports that reach up the layers (module level or inside a function):\n  "
        + "\n  ".join(bad)
        + f"\nLayers, lowest first: {ORDER}. Move what the lower module needs down to its "
        "layer (or into the module itself); do not import it lazily.")


def test_tensor_imports_only_errors_and_backend():
    modules = package_modules(SRC, PACKAGE)
    tree = ast.parse(modules["chainrule.tensor"].read_text(encoding="utf-8"))
    own = {t for _, t in imports("chainrule.tensor", modules, module_level=False)}
    others = sorted({alias.name if isinstance(node, ast.Import) else node.module
                     for node in _walk_imports(tree, module_level=False) if not node.level
                     for alias in node.names})
    assert own <= {"chainrule.errors", "chainrule.backend"} and not others, (
        f"tensor.py imports {sorted(own - {'chainrule.errors', 'chainrule.backend'}) + others}; "
        "Tensor is a value type that imports only errors and backend (NumPy as backend.np). "
        "A method that needs an op, the engine or grad mode belongs in the method table in "
        "ops/methods.py.")


def test_the_engine_never_imports_ops_or_anything_above_it():
    modules = package_modules(SRC, PACKAGE)
    engine = [m for m in modules if layer(m) is not None and layer(m) <= RANK["chainrule.autograd"]]
    assert "chainrule.autograd" in engine
    bad = [f"{_rel(modules[m])}:{line} imports {t}" for m in engine
           for line, t in imports(m, modules, module_level=False)
           if layer(t) is None or layer(t) > RANK["chainrule.autograd"]]
    assert not bad, ("the engine and the layers under it import from above:\n  "
                     + "\n  ".join(bad)
                     + "\nThe engine calls the rules stored on each Node's primitive and never "
                     "imports ops, Tensor methods' table, nn, explain or the package root; "
                     "move what it needs into the engine or below.")


def test_ops_never_import_nn_optim_explain_or_train():
    modules = package_modules(SRC, PACKAGE)
    ops = [m for m in modules if m == "chainrule.ops" or m.startswith("chainrule.ops.")]
    assert "chainrule.ops.methods" in ops
    bad = [f"{_rel(modules[m])}:{line} imports {t}" for m in ops
           for line, t in imports(m, modules, module_level=False)
           if t == PACKAGE or (layer(t) is not None and layer(t) > RANK["chainrule.ops"])]
    assert not bad, ("ops reach up into the layers above them:\n  " + "\n  ".join(bad)
                     + "\nMove the helper they need into ops (as float_input moved from "
                     "nn/functional.py to ops/conv.py) and let the upper layer import it.")


def test_the_layer_scan_catches_a_lazy_upward_import(tmp_path):
    pkg = tmp_path / "chainrule"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "nn").mkdir()
    for f in ["__init__.py", "ops/__init__.py", "nn/__init__.py", "nn/functional.py"]:
        (pkg / f).write_text("")
    (pkg / "ops" / "conv.py").write_text("def f():\n    from ..nn.functional import g\n")
    modules = package_modules(pkg, "chainrule")
    assert imports("chainrule.ops.conv", modules, module_level=True) == []
    assert imports("chainrule.ops.conv", modules, module_level=False) == [
        (2, "chainrule.nn"), (2, "chainrule.nn.functional")]
    assert len(_upward_imports(["chainrule.ops.conv"], modules)) == 2


# ---------------------------------------------------------------- 3. one method table

def _class_body_names(path, cls):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    names = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = node.lineno
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        names[n.id] = node.lineno
    return names


def test_tensor_defines_nothing_the_method_table_binds():
    in_class = _class_body_names(SRC / "tensor.py", "Tensor")
    dead = sorted(f"{name} (tensor.py:{in_class[name]})" for name in methods.METHODS
                  if name in in_class)
    assert not dead, (f"class Tensor in tensor.py defines {', '.join(dead)}, which the method "
                      "table in ops/methods.py overwrites when chainrule.ops is imported: a "
                      "dead definition. Delete it from tensor.py (or, if it needs no op, drop "
                      "it from METHODS instead).")


def test_every_table_entry_is_bound_and_nothing_else_binds_tensor_methods():
    unbound = [n for n, v in methods.METHODS.items() if inspect.getattr_static(Tensor, n) is not v]
    assert not unbound, (f"Tensor.{', Tensor.'.join(unbound)} are not the table's entries; "
                         "bind Tensor's methods only through ops.methods.install()")
    # no `Tensor.x = ...` or setattr(Tensor, ...) anywhere but the table's install()
    stray = []
    for module, path in package_modules(SRC, PACKAGE).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for t in targets:
                for n in ast.walk(t):
                    if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                            and n.value.id == "Tensor"):
                        stray.append(f"{_rel(path)}:{node.lineno} "
                                     f"Tensor.{n.attr} = ...")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "setattr" and node.args
                    and isinstance(node.args[0], ast.Name) and node.args[0].id == "Tensor"):
                stray.append(f"{_rel(path)}:{node.lineno} setattr(Tensor, ...)")
    assert not stray, ("Tensor's methods are bound outside the method table:\n  "
                       + "\n  ".join(stray) + "\nAdd them to METHODS in ops/methods.py instead.")


def test_every_method_defined_in_the_table_module_is_in_the_table():
    tree = ast.parse((SRC / "ops" / "methods.py").read_text(encoding="utf-8"))
    listed = {id(v.fget if isinstance(v, property) else v) for v in methods.METHODS.values()}
    orphans = [f"{node.name} (ops/methods.py:{node.lineno})" for node in tree.body
               if isinstance(node, ast.FunctionDef) and node.args.args
               and node.args.args[0].arg == "self"
               and id(getattr(methods, node.name)) not in listed]
    assert not orphans, (f"{', '.join(orphans)} take `self` but are not in METHODS, so Tensor "
                         "never gets them; add each to the table (or delete it).")
