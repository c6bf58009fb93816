"""Case 4: a scalar chain z = z · 1.0000001 of N nodes, forward and backward, each size in a
fresh process: time, and memory (RSS) before, with the graph alive, and after backward.

Run as a worker: `python -m bench.chain N` prints one JSON line."""
import json
import os
import subprocess
import sys
import time

FACTOR = 1.0000001


def rss_bytes():
    """Current resident set size (Linux /proc; elsewhere the peak, from resource)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes():
    """This process's peak RSS: VmHWM on Linux (ru_maxrss would include the parent's RSS at
    fork time, carried across exec), ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def worker(n):
    import numpy as np

    import chainrule as cr
    x = cr.tensor(1.0, requires_grad=True)
    base = rss_bytes()
    t0 = time.perf_counter()
    z = x
    for _ in range(n):
        z = z * FACTOR
    t1 = time.perf_counter()
    alive = rss_bytes()
    z.backward()
    t2 = time.perf_counter()
    del z
    after = rss_bytes()
    # the reference: the same float32 product, one multiplication at a time
    want = np.float32(1.0)
    f = np.float32(FACTOR)
    for _ in range(n):
        want = want * f
    ok = bool(x.grad.item() == want)
    return dict(nodes=n, forward_s=t1 - t0, backward_s=t2 - t1, rss_base=base,
                rss_graph=alive, rss_after=after, rss_peak=peak_rss_bytes(),
                grad_matches=ok)


def run(n):
    out = subprocess.run([sys.executable, "-m", "bench.chain", str(n)], capture_output=True,
                         text=True, check=True, cwd=os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(worker(int(sys.argv[1]))))
