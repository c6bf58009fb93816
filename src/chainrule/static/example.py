"""`chainrule explain --example static-vs-dynamic`: seed 001's closing remark, with numbers.

Seed 001 ends: "Theano and TensorFlow use static computational graphs, DyNet, Chainer and
PyTorch dynamic ones". This example runs its own function h(x) = 1/(1 + e^(−wx)) both ways:
the dynamic graph that chainrule records on every call, and the static graph `cr.compile`
traces once and replays; then a function whose branch depends on a value, which only the
dynamic graph can follow.
"""
import time


def _h_and_grad(cr, w, x):
    """The seed's graph h1 = w·x, h2 = −h1, h3 = exp(h2), h4 = 1 + h3, h5 = 1/h4, and dh/dw."""
    w.grad = None
    h = 1 / (1 + (-(w * x)).exp())
    h.backward()
    return h, w.grad


def _per_call(fn, calls=300):
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def _table(header, rows):
    """An aligned plain-text table as one paragraph (indented: a code block in Markdown)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(f"{c:<{w}}" for c, w in zip(r, widths)).rstrip()
             for r in [header] + list(rows)]
    return ("para", "\n".join("    " + line for line in lines))


def build(SeedExample, title):
    import chainrule as cr
    from chainrule.errors import CompileError
    f64 = cr.float64
    w = cr.tensor(0.0, dtype=f64, requires_grad=True, name="w")
    xs = [1.0, 2.0, -1.0]
    blocks = [("para",
               "Seed 001 closes with the two ways frameworks build a computational graph. A "
               "static graph (Theano, TensorFlow 1) is defined once and then run many times; a "
               "dynamic graph (DyNet, Chainer, PyTorch) is built again by every forward pass, "
               "as the code runs. chainrule records a dynamic graph on every call, and "
               "`cr.compile` turns a function into a static one: it traces one call and "
               "replays it. Both are run here on the seed's own function h(x) = 1/(1 + "
               "e^(−wx)) at w = 0.")]

    # ---- dynamic: a new graph per call
    blocks.append(("heading", "Dynamic: the graph is recorded again by every call"))
    rows, nodes_seen, keep = [], [], []
    for x in xs:
        xt = cr.tensor(x, dtype=f64, name="x")
        h = 1 / (1 + (-(w * xt)).exp())
        order = cr.autograd.toposort([h._node])
        nodes_seen.append({id(n) for n in order})
        keep.append(order)          # alive, so no id is reused by the next call's nodes
        w.grad = None
        h.backward()
        names = " → ".join(n.name for n in reversed(order))
        rows.append((f"x = {x:g}", f"{len(order)} nodes ({names})", f"h = {h.item():.6g}",
                     f"∂h/∂w = {w.grad.item():.6g}"))
    fresh = all(not (a & b) for i, a in enumerate(nodes_seen) for b in nodes_seen[i + 1:])
    blocks.append(_table(["call", "graph built", "value", "gradient"], rows))
    blocks.append(("para",
                   "Each call made its own nodes" + (" (no node object is shared between the "
                                                     "three calls)" if fresh else "") +
                   ", walked them backwards once and freed them. At x = 1 the gradient is the "
                   "seed's −0.25 × 1 × 1 × (−1) × 1 = 0.25."))

    # ---- static: traced once, replayed
    blocks.append(("heading", "Static: traced once by cr.compile, then replayed"))
    step = cr.compile(lambda x: _h_and_grad(cr, w, x))
    rows = []
    for i, x in enumerate(xs + [1.0]):
        h, g = step(cr.tensor(x, dtype=f64))
        what = ("eager (call 1)", "captured (call 2)")[i] if i < 2 else "replayed"
        rows.append((f"x = {x:g}", what, f"h = {h.item():.6g}", f"∂h/∂w = {g.item():.6g}"))
    blocks.append(_table(["call", "how it ran", "value", "gradient"], rows))
    blocks.append(("para", "The captured program (`step.graph()`): the five forward "
                           "operations of the seed's table, its backward schedule (one VJP "
                           "rule per edge, summed where paths meet), and where ∂h/∂w goes:"))
    blocks.append(("para", "\n".join("    " + line for line in step.graph().splitlines())))

    # ---- speed
    xt = cr.tensor(1.0, dtype=f64)
    eager = _per_call(lambda: _h_and_grad(cr, w, xt))
    replay = _per_call(lambda: step(xt))
    blocks.append(("heading", "Why the static graph is faster"))
    blocks.append(_table(["graph", "per call (forward + backward)"], [
        ("dynamic (eager)", f"{eager * 1e6:.1f} µs"),
        ("static (replay)", f"{replay * 1e6:.1f} µs"),
        ("ratio", f"{eager / replay:.1f}×")]))
    blocks.append(("para",
                   "Both run the same NumPy calls for the values and the same VJP rules. The "
                   "dynamic graph also pays, on every call, for what makes the graph: a Tensor "
                   "and a Node per operation, the topological sort, the dictionaries that sum "
                   "gradients, the dispatch of each operator. The replay is one generated "
                   "function of straight-line calls; it only checks its guards (shapes, "
                   "dtypes, modes) first. On scalars that bookkeeping is nearly all the cost; "
                   "on large matrices the arithmetic dominates and the two converge."))

    # ---- flexibility
    blocks.append(("heading", "Why the dynamic graph is more flexible"))

    v = cr.tensor(0.5, dtype=f64, requires_grad=True, name="w")

    def clipped(x):
        h = 1 / (1 + (-(v * x)).exp())
        if h > 0.5:                 # a branch on a value
            h = h * 0.5
        return h

    raw = [(1 / (1 + (-(v * x)).exp())).item() for x in (1.0, -1.0)]
    outs = [clipped(cr.tensor(x, dtype=f64)).item() for x in (1.0, -1.0)]
    msg = ""
    branchy = cr.compile(clipped)
    try:
        with cr.no_grad():
            for x in (1.0, -1.0, 2.0):
                branchy(cr.tensor(x, dtype=f64))
    except CompileError as exc:
        msg = str(exc).split(" reads a tensor's value")[0]
    blocks.append(("para",
                   "A function that branches on a value, `if h > 0.5: h = h * 0.5`, is just "
                   f"Python for the dynamic graph: with w = 0.5, x = 1 takes the branch (h = "
                   f"{raw[0]:.4g}, halved to {outs[0]:.4g}) and x = −1 does not (h = "
                   f"{outs[1]:.4g}), each call "
                   "recording the path it took. A static "
                   "graph holds one path, so `cr.compile` refuses to trace the decision and "
                   f"says where it is: «{msg} ...». The way out is to move the decision "
                   "outside the compiled function, to write it with tensor operations "
                   "(cr.where), or `cr.compile(fn, fallback=True)`, which runs such a function "
                   "eagerly. Static graphs buy speed with that restriction (and with guards: "
                   "a new input shape or a switch to eval mode means a new capture); dynamic "
                   "graphs buy the freedom of ordinary Python with the per-call bookkeeping."))
    return SeedExample("static-vs-dynamic", title, [(None, blocks)])
