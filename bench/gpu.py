"""`python -m bench.gpu [--rounds N] [--steps N] [--no-torch] [--out FILE]`: one training step
on a CUDA GPU, chainrule (CuPy) beside PyTorch, in one process:

- the MLP step of mlp.py at its large size: 784-1024-1024-10, batch 1024;
- the CNN step of cnn.py (two 3×3 convolutions, max-pool, linear; 1×28×28, batch 64);

each eager and compiled (`cr.compile`), against PyTorch eager. Targets: chainrule eager
≤ 1.5× PyTorch's step time, compiled ≤ 1.2×.

GPU calls return before the GPU has finished, so each timed block of steps ends with a
device synchronize before the clock stops. The implementations take turns in rounds, and the
best round counts: on a GPU the noise only ever adds time (a clock ramping up, a context
switch), so the fastest block is the closest to the step's own cost. Before timing,
chainrule's gradients on the GPU must equal the hand-written NumPy reference's (and
PyTorch's, on its GPU). All data is float32; PyTorch's TF32 is turned off, as CuPy uses none.
Without a GPU it says so and exits 0.
"""
import argparse
import datetime
import sys
import time

from .common import assert_close, fmt_time, write_json

DEVICE = TORCH_DEVICE = "cuda"
TARGETS = {"eager": 1.5, "compiled": 1.2}    # chainrule step time / PyTorch eager step time


def cuda_torch(no_torch):
    """torch on its GPU, or None with a printed note why the PyTorch side is left out."""
    if no_torch:
        return None
    try:
        import torch
    except ImportError:
        print("note: PyTorch is not installed: its side is left out and the targets not judged")
        return None
    if not torch.cuda.is_available():
        print(f"note: PyTorch {torch.__version__} has no CUDA here (a CPU-only build?): its "
              "side is left out and the targets not judged")
        return None
    torch.backends.cuda.matmul.allow_tf32 = False   # full float32, as CuPy computes
    torch.backends.cudnn.allow_tf32 = False
    return torch


def time_blocks(fns, rounds, steps):
    """Best seconds per call of each `fns[name] = (call, synchronize)`: in each round each
    function runs two untimed calls, then `steps` timed ones and a synchronize."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, (call, sync) in fns.items():
            call()
            call()
            sync()
            t0 = time.perf_counter()
            for _ in range(steps):
                call()
            sync()
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    return best


# ---------------------------------------------------------------- the two problems

def mlp_problem():
    from . import mlp
    dims, batch = mlp.SIZES["large"]
    params, x, y = mlp.make_problem(dims, batch)
    return {"name": "MLP 784-1024-1024-10, batch 1024", "params": params, "x": x, "y": y,
            "chainrule": lambda: mlp.chainrule_mlp(params, dims)[0],
            "torch": lambda torch: mlp.torch_mlp(torch, params, dims)[0],
            "reference": lambda: mlp.NumpyMLP(params).grads(x, y)[1]}


def cnn_problem():
    from . import cnn
    params, x, y = cnn.make_problem()
    return {"name": "CNN conv 1→8→16, pool, linear; 1×28×28, batch 64", "params": params,
            "x": x, "y": y,
            "chainrule": lambda: cnn.chainrule_cnn(params)[0],
            "torch": lambda torch: cnn.torch_cnn(torch, params)[0],
            "reference": lambda: cnn.NumpyCNN(params).grads(x, y)}


# ---------------------------------------------------------------- one case

def chainrule_on_gpu(problem):
    """A fresh chainrule model on the GPU, its SGD optimizer and the batch there."""
    import chainrule as cr
    from .mlp import LR
    model = problem["chainrule"]().to(DEVICE)
    x = cr.tensor(problem["x"], device=DEVICE)
    y = cr.tensor(problem["y"], device=DEVICE)
    return model, cr.optim.SGD(model.parameters(), lr=LR), x, y


def torch_on_gpu(torch, problem):
    from .mlp import LR
    model = problem["torch"](torch).to(TORCH_DEVICE)
    x = torch.from_numpy(problem["x"]).to(TORCH_DEVICE)
    y = torch.from_numpy(problem["y"]).to(TORCH_DEVICE)
    return model, torch.optim.SGD(model.parameters(), lr=LR), x, y


def check_gradients(problem, torch):
    """chainrule's gradients on the GPU (and PyTorch's) equal the hand-written NumPy ones."""
    from chainrule.nn import functional as F
    ref = problem["reference"]()
    model, _, x, y = chainrule_on_gpu(problem)
    F.cross_entropy(model(x), y).backward()
    for i, (p, g) in enumerate(zip(model.parameters(), ref)):
        assert_close(f"chainrule cuda {problem['name']} param {i}", p.grad.cpu().numpy(), g,
                     rtol=1e-3, atol=1e-5)
    if torch is not None:
        tmodel, _, tx, ty = torch_on_gpu(torch, problem)
        torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
        for i, (p, g) in enumerate(zip(tmodel.parameters(), ref)):
            assert_close(f"torch cuda {problem['name']} param {i}", p.grad.cpu().numpy(), g,
                         rtol=1e-3, atol=1e-5)


def check_compiled(problem):
    """Three compiled steps (eager, capture, replay) leave the weights three eager steps do."""
    import chainrule as cr
    from .mlp import chainrule_step
    (em, eo, x, y), (cm, co, _, _) = chainrule_on_gpu(problem), chainrule_on_gpu(problem)
    step = cr.compile(lambda a, b: chainrule_step(cm, co, a, b))
    for _ in range(3):
        chainrule_step(em, eo, x, y)
        step(x, y)
    assert step.stats["replays"] == 1, step.stats
    for p, q in zip(cm.parameters(), em.parameters()):
        assert_close(f"compiled {problem['name']}", p.detach().cpu().numpy(),
                     q.detach().cpu().numpy())


def run_case(problem, torch, rounds, steps):
    import chainrule as cr
    from .mlp import chainrule_step, torch_step
    check_gradients(problem, torch)
    check_compiled(problem)
    model, opt, x, y = chainrule_on_gpu(problem)
    cmodel, copt, _, _ = chainrule_on_gpu(problem)
    compiled = cr.compile(lambda a, b: chainrule_step(cmodel, copt, a, b))
    for _ in range(3):          # eager call, capture: the timed calls are replays
        compiled(x, y)
    sync = cr.cuda.synchronize
    fns = {"eager": (lambda: chainrule_step(model, opt, x, y), sync),
           "compiled": (lambda: compiled(x, y), sync)}
    if torch is not None:
        tmodel, topt, tx, ty = torch_on_gpu(torch, problem)
        fns["torch"] = (lambda: torch_step(torch, tmodel, topt, tx, ty), torch.cuda.synchronize)
    return time_blocks(fns, rounds, steps)


# ---------------------------------------------------------------- report

def report(results):
    lines = ["| case | chainrule eager | compiled | PyTorch eager | eager / PyTorch "
             f"(≤ {TARGETS['eager']}×) | compiled / PyTorch (≤ {TARGETS['compiled']}×) |",
             "|---|---|---|---|---|---|"]
    for name, t in results.items():
        cells = [name, fmt_time(t["eager"]), fmt_time(t["compiled"]), fmt_time(t.get("torch"))]
        for kind in ("eager", "compiled"):
            if t.get("torch"):
                ratio = t[kind] / t["torch"]
                met = "met" if ratio <= TARGETS[kind] else "NOT met"
                cells.append(f"{ratio:.2f}× {met}")
            else:
                cells.append("not judged (no PyTorch CUDA)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=(
        "chainrule on CUDA (CuPy) beside PyTorch on CUDA: MLP and CNN training steps."))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best counts)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    import chainrule as cr
    from chainrule import backend
    if not cr.cuda.is_available():
        print("bench.gpu: no CUDA device here (or CuPy is not installed: pip install "
              "'chainrule[cuda]'); nothing to time. Run it on a machine with an NVIDIA GPU.")
        return 0
    torch = cuda_torch(args.no_torch)
    print(f"GPU: {cr.cuda.get_device_name()}; CuPy {backend.kind('cuda').xp.__version__}; "
          f"PyTorch {torch.__version__ if torch else '-'}; {args.rounds} rounds of "
          f"{args.steps} steps, best round, float32\n")
    results = {}
    for problem in (mlp_problem(), cnn_problem()):
        results[problem["name"]] = run_case(problem, torch, args.rounds, args.steps)
    print(report(results))
    if args.out:
        write_json(args.out, {"when": datetime.datetime.now().isoformat(timespec="seconds"),
                              "gpu": cr.cuda.get_device_name(), "targets": TARGETS,
                              "seconds_per_step": results, "rounds": args.rounds,
                              "steps": args.steps})
    return 0


if __name__ == "__main__":
    sys.exit(main())
