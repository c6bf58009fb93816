"""Data-parallel scaling: `mpiexec -n 2` against one process, both with 1 BLAS thread per
process, on the 784-512-512-10 MLP (ReLU, cross-entropy, SGD) at batch 256 per process.

    python -m bench.distributed [--steps 60] [--rounds 3] [--out FILE]

Each round runs, one after the other in fresh processes: one process without
DistributedDataParallel (the baseline); two processes training independently, without any
communication (the ceiling this machine allows at the moment: on a shared 2-core machine two
busy processes rarely both get a whole core); `mpiexec -n 2` with DistributedDataParallel,
the overlap on; and the same with it off. Per step it reports the time (the mean over the
timed steps, after warm-up), throughput in samples/s, the scaling efficiency = (2-rank
throughput) / (2 × 1-process throughput) = t1 / t2 for equal per-rank batches, and the
communication time: the time spent
in the reducer's end-of-backward callback (exposed communication + packing) and, measured
alone, the all-reduce of the model's flat gradient (669,706 float32, 2.7 MB) and of 8 bytes.
From those two it estimates, with the ring all-reduce cost model
T(p) = 2(p-1)·α + 2(p-1)/p · bytes/B, the communication per step at 8 ranks on one machine
and at 64 ranks over a network (bench/NOTES.md §10).
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time

DIMS = (784, 512, 512, 10)
BATCH = 256
ROOT = pathlib.Path(__file__).resolve().parent.parent


# ----- inside each process -----
def _worker(args):
    import numpy as np

    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.nn import functional as F

    rank, world, ddp = 0, 1, None
    if args.ddp:
        import chainrule.distributed as dist
        from chainrule.nn.parallel import DistributedDataParallel
        dist.init_process_group("mpi", blas_threads=1)
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        cr.set_num_threads(1)
    cr.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(DIMS[:-1], DIMS[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(DIMS) - 2 else [])
    model = nn.Sequential(*layers)
    net = model
    comm = [0.0]
    if args.ddp and not args.independent:
        net = ddp = DistributedDataParallel(model, overlap=args.overlap)
        done = ddp.reducer._done

        def timed_done(leaves):     # the end-of-backward reduction, timed
            t0 = time.perf_counter()
            done(leaves)
            comm[0] += time.perf_counter() - t0
        ddp.reducer._done = timed_done
        ddp.reducer.watch.done = timed_done
    opt = optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(rank)
    x = cr.tensor(rng.standard_normal((BATCH, DIMS[0])).astype(np.float32))
    y = cr.tensor(rng.integers(0, DIMS[-1], BATCH))

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(5):
        step()
    if args.ddp:
        dist.barrier()
    comm[0] = 0.0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    step_s = (time.perf_counter() - t0) / args.steps
    if args.ddp:     # the job's pace is its slowest rank's
        every = [None] * world
        dist.all_gather_object(every, step_s)
        step_s = max(every)
    result = dict(world=world, step_s=step_s, samples_per_s=world * BATCH / step_s)
    if ddp is not None:
        result["reduce_callback_s"] = comm[0] / args.steps
        result["buckets"] = len(ddp.reducer.buckets)
        result["starts"] = ddp.reducer.counts
        numel = sum(p.numel() for p in model.parameters())
        result["allreduce_s"] = _allreduce_time(dist, np.zeros(numel + 6, np.float32), 20)
        result["allreduce_8B_s"] = _allreduce_time(dist, np.zeros(2, np.float32), 200)
        result["grad_bytes"] = numel * 4
        dist.barrier()
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _allreduce_time(dist, flat, repeats):
    from chainrule.tensor import Tensor
    t = Tensor._wrap(flat)
    times = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ----- the driver -----
def _mpiexec():
    for folder in (pathlib.Path(sys.executable).parent, sysconfig.get_path("scripts")):
        candidate = pathlib.Path(folder) / "mpiexec"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("mpiexec")


def _run(cmd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
                         stdin=subprocess.DEVNULL)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")


def ring_allreduce_s(p, nbytes, alpha, bandwidth):
    """The ring all-reduce cost model: 2(p-1) steps of latency alpha, each rank sending and
    receiving 2(p-1)/p of the message at `bandwidth` bytes/s."""
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes / bandwidth


def measure(steps=60, rounds=3):
    """Alternate the three runs `rounds` times; medians per run and the derived figures."""
    mpiexec = _mpiexec()
    if mpiexec is None:
        raise RuntimeError("no mpiexec: pip install 'chainrule[distributed]' (mpi4py + mpich)")
    me = [sys.executable, "-m", "bench.distributed", "--worker", "--steps", str(steps)]
    load_before = os.getloadavg()
    runs = {"one process": [], "2 processes, no communication": [], "2 ranks, overlap": [],
            "2 ranks, no overlap": []}
    for _ in range(rounds):
        runs["one process"].append(_run(me))
        runs["2 processes, no communication"].append(_run([mpiexec, "-n", "2"] + me +
                                                          ["--ddp", "--independent"]))
        runs["2 ranks, overlap"].append(_run([mpiexec, "-n", "2"] + me + ["--ddp"]))
        runs["2 ranks, no overlap"].append(_run([mpiexec, "-n", "2"] + me +
                                                ["--ddp", "--no-overlap"]))
    med = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]
                  if isinstance(rs[0][key], (int, float))} for name, rs in runs.items()}
    t1 = med["one process"]["step_s"]
    for m in med.values():
        m["efficiency"] = t1 / m["step_s"]
    m = med["2 ranks, overlap"]
    nbytes, small = m["grad_bytes"], m["allreduce_8B_s"]
    alpha = small / 2                                   # p = 2: two latency steps
    bandwidth = nbytes / max(m["allreduce_s"] - small, 1e-9)
    expected = []
    for p, a, b, where in ((8, alpha, bandwidth, "one 8-core machine, measured α and B"),
                           (64, 30e-6, 1.25e9, "64 ranks over 10 GbE, α 30 µs"),
                           (64, 10e-6, 12.5e9, "64 ranks over 100 Gb/s, α 10 µs")):
        t = ring_allreduce_s(p, nbytes, a, b)
        expected.append(dict(ranks=p, where=where, allreduce_s=t, efficiency=t1 / (t1 + t)))
    return dict(runs=runs, medians=med, alpha_s=alpha, bandwidth=bandwidth, expected=expected,
                load=[load_before, os.getloadavg()], steps=steps, rounds=rounds)


def report(res):
    med = res["medians"]
    lines = [f"Data-parallel scaling, MLP {'-'.join(map(str, DIMS))}, batch {BATCH} per process, "
             f"1 BLAS thread each, {os.cpu_count()} CPUs; load average "
             f"{res['load'][0][0]:.1f} -> {res['load'][1][0]:.1f}; median of {res['rounds']} "
             f"rounds x {res['steps']} steps", "",
             "| run | step | samples/s | efficiency | reduce at end of backward | all-reduce "
             "2.7 MB alone |", "|---|---|---|---|---|---|"]
    for name, m in med.items():
        comm = f"{m['reduce_callback_s'] * 1e3:.2f} ms" if "reduce_callback_s" in m else "-"
        alone = f"{m['allreduce_s'] * 1e3:.2f} ms" if "allreduce_s" in m else "-"
        lines.append(f"| {name} | {m['step_s'] * 1e3:.1f} ms | {m['samples_per_s']:.0f} | "
                     f"{m['efficiency']:.1%} | {comm} | {alone} |")
    m = med["2 ranks, overlap"]
    lines.append(f"\nmeasured: 8-byte all-reduce {m['allreduce_8B_s'] * 1e6:.1f} µs (α ≈ "
                 f"{res['alpha_s'] * 1e6:.1f} µs), {m['grad_bytes'] / 1e6:.2f} MB all-reduce "
                 f"{m['allreduce_s'] * 1e3:.2f} ms (B ≈ {res['bandwidth'] / 1e9:.2f} GB/s within "
                 "this machine)")
    for e in res["expected"]:
        lines.append(f"expected at {e['ranks']} ranks ({e['where']}): all-reduce "
                     f"{e['allreduce_s'] * 1e3:.2f} ms per step; efficiency without overlap ≈ "
                     f"{e['efficiency']:.0%} of linear")
    return "\n".join(lines)


def suite_rows(quick=False):
    """The optional `python -m bench --cases distributed` row."""
    case = f"2 ranks vs 1 process, MLP {'-'.join(map(str, DIMS))}, b={BATCH}/rank"
    try:
        res = measure(steps=20 if quick else 60, rounds=1 if quick else 3)
    except RuntimeError as exc:
        return [dict(case=case, numpy=None, chainrule=None, torch=None,
                     target="≥ 85% scaling efficiency", met=None, note=str(exc)[:200])]
    med = res["medians"]
    two, one, off = med["2 ranks, overlap"], med["one process"], med["2 ranks, no overlap"]
    ceiling = med["2 processes, no communication"]
    note = (f"1 process {one['step_s'] * 1e3:.1f} ms/step, 2 ranks {two['step_s'] * 1e3:.1f} "
            f"ms/step: efficiency {two['efficiency']:.0%} (overlap off: "
            f"{off['efficiency']:.0%}; 2 processes without communication: "
            f"{ceiling['efficiency']:.0%}); reduce at end of backward "
            f"{two['reduce_callback_s'] * 1e3:.2f} ms/step; all-reduce of the 2.7 MB gradient "
            f"alone {two['allreduce_s'] * 1e3:.2f} ms")
    return [dict(case=case, numpy=None, chainrule=two["step_s"], torch=None,
                 target="≥ 85% scaling efficiency", met=two["efficiency"] >= 0.85, note=note)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ddp", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-overlap", dest="overlap", action="store_false",
                        help=argparse.SUPPRESS)
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    try:
        res = measure(args.steps, args.rounds)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(report(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
