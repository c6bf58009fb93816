"""Shared helpers of the benchmark suite: thread counts, interleaved timing, reporting."""
import json
import os
import statistics
import tempfile
import time


def numpy_threads():
    """How many threads NumPy's BLAS uses (threadpoolctl when installed, else the CPU count)."""
    import numpy  # noqa: F401  (the BLAS must be loaded before threadpoolctl can see it)
    try:
        from threadpoolctl import threadpool_info
        counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
        if counts:
            return max(counts)
    except ImportError:
        pass
    return os.cpu_count() or 1


def load_torch(threads):
    """torch with `threads` intra-op threads, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def time_interleaved(fns, repeats, rounds=None):
    """Median seconds per call of each function in `fns` (name -> callable).

    The functions take turns in `rounds` blocks (default: one per 3 timed calls), so drift
    on a shared, noisy machine hits them all alike and the ratios between them hold even when
    absolute times wander. Each block starts with two untimed calls: a library's thread pool
    may still be spinning from the previous block (OpenMP and OpenBLAS threads busy-wait
    after a call) and would otherwise slow the next library's first calls."""
    rounds = rounds or max(3, repeats // 3)
    per_round = max(1, -(-repeats // rounds))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            fn()
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def assert_close(name, got, want, rtol=2e-4, atol=2e-5):
    """Fail the benchmark (not just warn) when an implementation's gradient disagrees."""
    import numpy as np
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.max(np.abs(got - want)) if got.shape == want.shape else "shape"
        raise AssertionError(f"{name}: gradients differ from the reference (max abs error {err}, "
                             f"shapes {got.shape} vs {want.shape})")


def write_json(path, obj):
    """Write `obj` as JSON atomically (temp file in the same folder, fsync, replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
