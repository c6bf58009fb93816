"""stack/cat backward against the number of pieces (bench/NOTES.md §12): k tensors of 4
float32 values stacked, summed, backward; chainrule beside PyTorch, interleaved, the best of
`repeats` per size. Linear means the time per piece stays flat as k grows (it was quadratic:
16,000 pieces took 37-60 s).

    python -m bench.cat_scaling [--sizes 1000,4000,16000] [--repeats 3]
"""
import argparse
import time

import numpy as np

import chainrule as cr

from .common import load_torch


def _chainrule(k):
    xs = [cr.tensor(np.ones(4, np.float32), requires_grad=True) for _ in range(k)]
    start = time.perf_counter()
    y = cr.stack(xs).sum()
    mid = time.perf_counter()
    y.backward()
    return mid - start, time.perf_counter() - mid


def _torch(torch, k):
    xs = [torch.ones(4, requires_grad=True) for _ in range(k)]
    start = time.perf_counter()
    y = torch.stack(xs).sum()
    mid = time.perf_counter()
    y.backward()
    return mid - start, time.perf_counter() - mid


def run(sizes=(1000, 2000, 4000, 8000, 16000), repeats=3, torch=None):
    rows = []
    for k in sizes:
        ours, theirs = [], []
        for _ in range(repeats):
            ours.append(_chainrule(k))
            if torch is not None:
                theirs.append(_torch(torch, k))
        fwd, bwd = min(t[0] for t in ours), min(t[1] for t in ours)
        tb = min(t[1] for t in theirs) if theirs else None
        rows.append(dict(pieces=k, forward_s=fwd, backward_s=bwd, torch_backward_s=tb))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,4000,8000,16000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    torch = None if args.no_torch else load_torch(1)
    rows = run(tuple(int(s) for s in args.sizes.split(",")), args.repeats, torch)
    print("| pieces | forward | backward | backward per piece | PyTorch backward |")
    print("|---|---|---|---|---|")
    for r in rows:
        tb = "—" if r["torch_backward_s"] is None else f"{r['torch_backward_s'] * 1e3:.0f} ms"
        print(f"| {r['pieces']} | {r['forward_s'] * 1e3:.0f} ms | {r['backward_s'] * 1e3:.0f} ms "
              f"| {r['backward_s'] / r['pieces'] * 1e6:.1f} µs | {tb} |")


if __name__ == "__main__":
    main()
