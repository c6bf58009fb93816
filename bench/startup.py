"""Case 5: `import` time of each library in a fresh process (the import alone, so bare
Python's start-up is netted out), and the peak RSS of a fresh process running 50 medium MLP
steps (case 1's 784-512-512-10, batch 256) with each implementation.

Run as a worker: `python -m bench.startup rss <numpy|chainrule|torch> <threads>` prints the
peak RSS in bytes."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 50


def _python(code_or_args, env_threads=None):
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return out.stdout.strip().splitlines()[-1]


def import_times(modules, repeats=7):
    """Seconds `import module` takes in a fresh interpreter, for each module: the fastest of
    `repeats` runs taken in turns (other jobs on the machine can only add time)."""
    code = "import time; t = time.perf_counter(); import {m}; print(time.perf_counter() - t)"
    runs = {m: [] for m in modules}
    for _ in range(repeats):
        for m in modules:
            runs[m].append(float(_python(code.format(m=m))))
    return {m: min(r) for m, r in runs.items()}


def peak_rss(impl, threads):
    return int(_python(["-m", "bench.startup", "rss", impl, str(threads)]))


def _worker(impl, threads):
    import numpy as np  # noqa: F401

    from . import mlp
    from .chain import peak_rss_bytes
    dims, batch = mlp.SIZES["medium"]
    params, x, y = mlp.make_problem(dims, batch)
    if impl == "numpy":
        model = mlp.NumpyMLP(params)
        step = lambda: model.step(x, y)  # noqa: E731
    elif impl == "chainrule":
        import chainrule as cr
        model, opt = mlp.chainrule_mlp(params, dims)
        cx, cy = cr.tensor(x), cr.tensor(y)
        step = lambda: mlp.chainrule_step(model, opt, cx, cy)  # noqa: E731
    else:
        from .common import load_torch
        torch = load_torch(threads)
        model, opt = mlp.torch_mlp(torch, params, dims)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        step = lambda: mlp.torch_step(torch, model, opt, tx, ty)  # noqa: E731
    for _ in range(STEPS):
        step()
    return peak_rss_bytes()


def run(threads, with_torch):
    libs = ["numpy", "chainrule"] + (["torch"] if with_torch else [])
    times = import_times(libs)
    rss = {lib: peak_rss(lib, threads) for lib in libs}
    return times, rss


if __name__ == "__main__":
    if sys.argv[1:2] == ["rss"]:
        print(_worker(sys.argv[2], int(sys.argv[3])))
