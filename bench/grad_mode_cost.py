"""What a per-thread grad mode costs on the per-op hot path (bench/NOTES.md §11).

`registry.apply` reads the grad mode once per op that could record. This times `apply` itself
(a recorded float32 multiply of 16 elements, forward only, and the same op with no input
requiring grad) with the mode read four ways, each a copy of `apply` whose one read of the mode
is swapped, interleaved in one process (min over rounds):

    process-wide   a slotted object's attribute (before: one switch for every thread)
    contextvar     ContextVar.get() (now: per thread, and per asyncio task)
    local.state    a threading.local holding a slotted object, .state.enabled
    local subclass a threading.local subclass's attribute

    python -m bench.grad_mode_cost
"""
import inspect
import textwrap
import threading
import timeit

import numpy as np

import chainrule as cr
from chainrule.ops import registry
from chainrule.ops.elementwise import MUL

READ = "grad_enabled()"


class _Slotted:
    __slots__ = ("enabled",)

    def __init__(self):
        self.enabled = True


class _LocalSubclass(threading.local):
    enabled = True


class _LocalState(threading.local):
    def __init__(self):
        self.state = _Slotted()


VARIANTS = {
    "process-wide (before)": ("_MODE.enabled", _Slotted()),
    "contextvar (now)": (READ, None),
    "threading.local .state": ("_MODE.state.enabled", _LocalState()),
    "threading.local subclass": ("_MODE.enabled", _LocalSubclass()),
}


def _variant(read, mode):
    """A copy of registry.apply reading the grad mode with `read`."""
    source = textwrap.dedent(inspect.getsource(registry.apply))
    assert source.count(READ) == 1, "registry.apply changed: update this benchmark"
    namespace = dict(vars(registry), _MODE=mode)
    exec(compile(source.replace(READ, read), "<apply variant>", "exec"), namespace)
    return namespace["apply"]


def run(rounds=31, number=20_000):
    a = cr.tensor(np.linspace(-1, 1, 16, dtype=np.float32), requires_grad=True)
    b = cr.tensor(np.linspace(1, 2, 16, dtype=np.float32))
    c = cr.tensor(np.linspace(1, 2, 16, dtype=np.float32))
    applies = {name: _variant(read, mode) for name, (read, mode) in VARIANTS.items()}
    best = {name: [float("inf"), float("inf")] for name in applies}
    for _ in range(rounds):
        for name, apply in applies.items():
            pair, plain = (a, b), (c, b)
            recorded = timeit.timeit(lambda: apply(MUL, pair), number=number) / number
            unrecorded = timeit.timeit(lambda: apply(MUL, plain), number=number) / number
            best[name][0] = min(best[name][0], recorded)
            best[name][1] = min(best[name][1], unrecorded)
    return best


def read_alone(rounds=31, number=200_000):
    """The read by itself, in a function like apply (a module global, then the read)."""
    reads = {}
    for name, (read, mode) in VARIANTS.items():
        namespace = dict(vars(registry), _MODE=mode)
        exec(f"def f():\n    return {read}", namespace)
        reads[name] = namespace["f"]
    best = {name: float("inf") for name in reads}
    for _ in range(rounds):
        for name, f in reads.items():
            best[name] = min(best[name], timeit.timeit(f, number=number) / number)
    return best


def main():
    best, alone = run(), read_alone()
    base, base_alone = best["process-wide (before)"][0], alone["process-wide (before)"]
    print("| grad mode read | recorded op | vs before | op needing no grad | the read alone "
          "(in a call) | vs before |")
    print("|---|---|---|---|---|---|")
    for name, (recorded, unrecorded) in best.items():
        print(f"| {name} | {recorded * 1e9:.0f} ns | {(recorded - base) * 1e9:+.0f} ns | "
              f"{unrecorded * 1e9:.0f} ns | {alone[name] * 1e9:.1f} ns | "
              f"{(alone[name] - base_alone) * 1e9:+.1f} ns |")


if __name__ == "__main__":
    main()
