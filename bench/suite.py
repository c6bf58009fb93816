"""Runs the cases, judges each target, prints the table and writes the JSON."""
import datetime
import os
import platform
import time

from . import CASES, chain, cnn, mlp, overhead, startup
from . import compile as compiled
from .common import fmt_time, load_torch, numpy_threads, write_json

MIB = 2 ** 20


def _row(case, times, target, met, note=""):
    return dict(case=case, numpy=times.get("numpy"), chainrule=times.get("chainrule"),
                torch=times.get("torch"), target=target, met=met, note=note)


def _ratio(times, a, b):
    return times[a] / times[b] if times.get(a) and times.get(b) else None


def bench_mlp(torch, repeats, sizes):
    rows = []
    for size in sizes:
        limit = 1.30 if size == "small" else 1.10
        times = mlp.run(size, torch, repeats if size != "large" else max(3, repeats // 3))
        r = _ratio(times, "chainrule", "numpy")
        dims, batch = mlp.SIZES[size]
        rows.append(_row(f"MLP step {'-'.join(map(str, dims))}, b={batch}", times,
                         f"≤ {limit:.2f}× NumPy", r <= limit))
    return rows


def bench_cnn(torch, repeats):
    times = cnn.run(torch, max(3, repeats // 3))
    r = _ratio(times, "chainrule", "torch")
    return [_row("CNN step 1×28×28, b=64", times, "≤ 1.5× PyTorch",
                 None if r is None else r <= 1.5, "" if torch else "no torch: not judged")]


def bench_overhead(torch, repeats):
    times = overhead.run(torch, repeats)
    return [_row("per op, 16 elements, fwd+bwd", times, "≤ 5 µs", times["chainrule"] <= 5e-6)]


def bench_chain(sizes):
    runs = [chain.run(n) for n in sizes]
    rows = []
    for res in runs:
        total = res["forward_s"] + res["backward_s"]
        graph = res["rss_graph"] - res["rss_base"]
        left = res["rss_after"] - res["rss_base"]
        freed = left <= 0.2 * graph
        note = (f"fwd {res['forward_s']:.2f} s + bwd {res['backward_s']:.2f} s; graph "
                f"{graph / MIB:.0f} MiB = {graph / res['nodes']:.0f} B/node; "
                f"{left / MIB:.0f} MiB left after backward; grad exact: {res['grad_matches']}")
        met = total < 10.0 and freed and res["grad_matches"] if res["nodes"] >= 10 ** 6 else None
        rows.append(_row(f"{res['nodes']:,}-node scalar chain", {"chainrule": total},
                         "< 10 s, freed" if res["nodes"] >= 10 ** 6 else "(for linearity)",
                         met, note))
    if len(runs) > 1:
        per = [(r["rss_graph"] - r["rss_base"]) / r["nodes"] for r in runs]
        linear = max(per) <= 1.3 * min(per)
        rows.append(_row("chain memory per node across sizes", {}, "linear in nodes", linear,
                         " vs ".join(f"{p:.0f} B/node" for p in per)))
    return rows


def bench_startup(threads, with_torch):
    times, rss = startup.run(threads, with_torch)
    net = times["chainrule"] - times["numpy"]
    rows = [_row("import (fresh process)", times, "≤ NumPy + 40 ms", net <= 0.040,
                 f"chainrule - numpy = {net * 1e3:+.0f} ms")]
    rows.append(dict(case="peak RSS, 50 medium MLP steps", numpy=rss["numpy"],
                     chainrule=rss["chainrule"], torch=rss.get("torch"), target="≤ 80 MiB",
                     met=rss["chainrule"] <= 80 * MIB, note="", unit="bytes"))
    return rows


def bench_compile(torch, repeats, quick):
    """cr.compile: replayed steps beside hand-written NumPy and PyTorch eager, and what the
    capture costs (see bench/compile.py)."""
    rows, costs = [], []
    for size, limit in (("small", 1.05), ("medium", 1.02))[:1 if quick else 2]:
        times = compiled.mlp_case(size, torch, repeats)
        costs.append((f"MLP {size}", times.pop("capture"), times))
        r = _ratio(times, "chainrule", "numpy")
        dims, batch = mlp.SIZES[size]
        rows.append(_row(f"compiled MLP step {'-'.join(map(str, dims))}, b={batch}", times,
                         f"≤ {limit:.2f}× NumPy", r <= limit,
                         f"eager {times['eager'] / times['numpy']:.2f}× NumPy"))
    times = compiled.chain_case(torch, repeats)
    costs.append(("per-op chain", times.pop("capture"), times))
    r = _ratio(times, "chainrule", "numpy")
    rows.append(_row(f"compiled chain {compiled.CHAIN_N}×(x·1.0001+0.0001).tanh(), 16 elements",
                     times, "≤ 2× NumPy calls", r <= 2.0,
                     f"eager {times['eager'] / times['numpy']:.2f}× NumPy"))
    for label, case in (("compiled LSTM LM step (2 layers, 32/64, bptt 16, b=8)",
                         compiled.lm_case),
                        ("compiled CNN step 1×28×28, b=64", compiled.cnn_case)):
        times = case(torch, max(3, repeats // 3))
        costs.append((label.split(" step")[0].replace("compiled ", ""), times.pop("capture"),
                      times))
        r = _ratio(times, "chainrule", "torch")
        rows.append(_row(label, times, "≤ 1.0× PyTorch", None if r is None else r <= 1.0,
                         f"eager {times['eager'] / times['torch']:.2f}× torch" if torch
                         else "no torch: not judged"))
    for label, cost, times in costs:
        rows.append(dict(case=f"capture cost, {label}", numpy=None, chainrule=cost["capture"],
                         torch=None, target="(reported)", met=None,
                         note=f"call 1 (eager) {cost['first'] * 1e3:.1f} ms, call 2 (capture) "
                              f"{cost['capture'] * 1e3:.1f} ms, replay "
                              f"{times['chainrule'] * 1e3:.2f} ms: paid back after "
                              f"{cost['break_even']:.0f} calls"))
    return rows


def run(cases=CASES, repeats=15, quick=False, with_torch=True, out=None):
    threads = numpy_threads()
    torch = load_torch(threads) if with_torch else None
    started = time.time()
    load_before = os.getloadavg()
    rows = []
    if "mlp" in cases:
        rows += bench_mlp(torch, repeats, ("small", "medium") if quick else tuple(mlp.SIZES))
    if "cnn" in cases:
        rows += bench_cnn(torch, repeats)
    if "overhead" in cases:
        rows += bench_overhead(torch, repeats)
    if "chain" in cases:
        rows += bench_chain((10 ** 5,) if quick else (2 * 10 ** 5, 10 ** 6))
    if "startup" in cases:
        rows += bench_startup(threads, torch is not None)
    if "compile" in cases:
        rows += bench_compile(torch, repeats, quick)
    if "distributed" in cases:
        from . import distributed
        rows += distributed.suite_rows(quick)
    info = dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
                python=platform.python_version(), machine=platform.machine(),
                cpus=os.cpu_count(), numpy_threads=threads,
                torch=getattr(torch, "__version__", None), quick=quick, repeats=repeats,
                load_before=load_before, load_after=os.getloadavg(),
                seconds=round(time.time() - started, 1))
    result = dict(info=info, rows=rows)
    print(format_table(result))
    if out is not None:
        write_json(out, result)
        print(f"\nwritten: {out}")
    return result


def _cell(row, key):
    value = row.get(key)
    if value is None:
        return "-"
    if row.get("unit") == "bytes":
        return f"{value / MIB:.0f} MiB"
    return fmt_time(value)


def _ratios(row):
    parts = []
    if row.get("unit") != "bytes" and row.get("numpy") and row.get("chainrule"):
        parts.append(f"{row['chainrule'] / row['numpy']:.2f}× NumPy")
    if row.get("torch") and row.get("chainrule"):
        parts.append(f"{row['chainrule'] / row['torch']:.2f}× torch")
    return ", ".join(parts) or "-"


def format_table(result):
    info = result["info"]
    lines = [f"chainrule benchmarks — {info['date']}, Python {info['python']}, "
             f"{info['cpus']} CPUs, NumPy threads {info['numpy_threads']}, "
             f"torch {info['torch'] or 'not installed'}; load average "
             f"{info['load_before'][0]:.1f} -> {info['load_after'][0]:.1f}",
             "",
             "| case | hand NumPy | chainrule | PyTorch | chainrule ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        met = {True: "met", False: "NOT met", None: "-"}[row["met"]]
        lines.append(f"| {row['case']} | {_cell(row, 'numpy')} | {_cell(row, 'chainrule')} | "
                     f"{_cell(row, 'torch')} | {_ratios(row)} | {row['target']} | {met} |")
    notes = [f"- {row['case']}: {row['note']}" for row in result["rows"] if row.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))
