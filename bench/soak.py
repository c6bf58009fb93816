"""Soak benchmark: 10,000 training steps of a small MLP with memory sampled along the way.

A graph kept alive by accident (a loss appended to a list with its graph, an optimizer state
that grows, a hook that stores nodes) shows up here as memory that climbs with the step
count. The run samples, at log-spaced steps: the process RSS, the memory NumPy and Python
hold (tracemalloc: current and the peak since the previous sample) and the number of live
graph nodes and tensors, then prints a table and checks that nothing grew between step 100
and the last step.

    python bench/soak.py                 # 10,000 steps with chainrule.nn and Adam
    python bench/soak.py --steps 2000    # shorter
    python bench/soak.py --plain         # plain cr ops (no chainrule.nn / optim)

Exit status 0 when memory is flat, 1 when it grew. This is a benchmark, not a unit test:
it takes a minute or so (tracemalloc slows allocation-heavy code down).
"""
import argparse
import gc
import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import chainrule as cr  # noqa: E402

# Allowed growth between step 100 and the last step: below these, the difference is noise
# (allocator caches, interned strings), not a leak; one leaked step graph of this MLP is
# ~60 KB, so a leak of one graph per step would exceed the tracemalloc limit by step ~200.
TRACED_SLACK = 256 * 1024
RSS_SLACK = 8 * 1024 * 1024

DIMS, BATCH, N_SAMPLES = (20, 64, 64, 3), 32, 1024


def rss_bytes():
    """Current resident set size (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def live_graph_objects():
    """(graph nodes, tensors) reachable by the garbage collector right now."""
    nodes = tensors = 0
    for obj in gc.get_objects():
        t = type(obj)
        if t is cr.autograd.Node:
            nodes += 1
        elif t is cr.Tensor:
            tensors += 1
    return nodes, tensors


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N_SAMPLES, DIMS[0])).astype(np.float32)
    w = rng.standard_normal((DIMS[0], DIMS[-1])).astype(np.float32)
    y = np.argmax(x @ w, axis=1)
    return x, y


def nn_trainer():
    """One training step with chainrule.nn, F.cross_entropy and Adam."""
    import chainrule.nn as nn
    import chainrule.nn.functional as F
    layers = []
    for i, (a, b) in enumerate(zip(DIMS[:-1], DIMS[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(DIMS) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = cr.optim.Adam(model.parameters(), lr=1e-3)

    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(model(cr.tensor(xb)), cr.tensor(yb))
        loss.backward()
        opt.step()
        return loss.item()
    return step, "chainrule.nn MLP + Adam"


def plain_trainer():
    """The same MLP from plain cr ops, with a hand-written SGD update."""
    rng = np.random.default_rng(1)
    params = []
    for a, b in zip(DIMS[:-1], DIMS[1:]):
        params.append(cr.tensor(rng.uniform(-1, 1, (a, b)).astype(np.float32) / np.sqrt(a),
                                requires_grad=True))
        params.append(cr.zeros(b, requires_grad=True))
    eye = np.eye(DIMS[-1], dtype=np.float32)

    def step(xb, yb):
        h = cr.tensor(xb)
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i < len(params) - 2:
                h = h.relu()
        loss = -(h.log_softmax(-1) * cr.tensor(eye[yb])).sum(-1).mean()
        loss.backward()
        with cr.no_grad():
            for p in params:
                p -= 0.05 * p.grad
                p.grad = None
        return loss.item()
    return step, "plain cr ops MLP + SGD"


def sample_points(steps):
    """Steps at which memory is sampled: early ones, then every 2,000, and the last."""
    points = {1, 100, 500, 1000, steps} | set(range(2000, steps, 2000))
    return sorted(p for p in points if p <= steps)


def run(steps, plain):
    try:
        step, label = plain_trainer() if plain else nn_trainer()
    except (ImportError, AttributeError) as exc:   # nn/optim not there yet: plain ops
        print(f"(chainrule.nn unavailable: {exc}; using plain ops)")
        step, label = plain_trainer()
    x, y = make_data()
    order = np.random.default_rng(2).permutation(N_SAMPLES)
    points = set(sample_points(steps))
    rows = []
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    loss = float("nan")
    for i in range(1, steps + 1):
        start = ((i - 1) * BATCH) % N_SAMPLES
        idx = order[start:start + BATCH]
        loss = step(x[idx], y[idx])
        if i in points:
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            nodes, tensors = live_graph_objects()
            rows.append((i, rss_bytes(), current, peak, nodes, tensors, loss,
                         time.perf_counter() - t0))
    tracemalloc.stop()
    return label, rows


def report(label, rows, steps):
    mib = 1024 * 1024
    print(f"soak: {steps} training steps, {label}, MLP {DIMS}, batch {BATCH}")
    print(f"{'step':>7} {'RSS MiB':>9} {'traced KiB':>11} {'peak KiB':>9} {'nodes':>6} "
          f"{'tensors':>8} {'loss':>8} {'seconds':>8}")
    for i, rss, cur, peak, nodes, tensors, loss, secs in rows:
        print(f"{i:>7} {rss / mib:>9.2f} {cur / 1024:>11.1f} {peak / 1024:>9.1f} {nodes:>6} "
              f"{tensors:>8} {loss:>8.4f} {secs:>8.1f}")
    at100 = next(r for r in rows if r[0] == 100)
    last = rows[-1]
    checks = [
        ("traced memory (current)", last[2] - at100[2], TRACED_SLACK),
        ("traced memory (peak in window)", last[3] - at100[3], TRACED_SLACK),
        ("RSS", last[1] - at100[1], RSS_SLACK),
        ("live graph nodes", last[4] - at100[4], 0),
        ("live tensors", last[5] - at100[5], 0),
    ]
    ok = True
    print(f"\nstep 100 -> step {last[0]}:")
    for name, growth, slack in checks:
        flat = growth <= slack
        ok &= flat
        unit = "" if "live" in name else f" bytes (allowed {slack})"
        print(f"  {name:<32} grew {growth:+d}{unit}: {'ok' if flat else 'GREW'}")
    print("memory is flat" if ok else "MEMORY GREW: something keeps graphs or state alive")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--plain", action="store_true", help="plain cr ops instead of nn")
    args = parser.parse_args(argv)
    if args.steps < 100:
        parser.error("--steps must be at least 100 (step 100 is the baseline)")
    label, rows = run(args.steps, args.plain)
    return 0 if report(label, rows, args.steps) else 1


if __name__ == "__main__":
    sys.exit(main())
