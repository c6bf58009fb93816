"""`python -m bench [--quick] [--cases mlp,cnn,...] [--no-torch] [--repeats N] [--out FILE]`"""
import argparse
import datetime
import os
import sys

from . import CASES, OPTIONAL_CASES


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=(
        "chainrule side by side with hand-written NumPy backprop and PyTorch (CPU)."))
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, no large MLP, a 1e5-node chain (a smoke run)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)} (optional: "
                             f"{','.join(OPTIONAL_CASES)})")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per case")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for NumPy (and torch); default: the BLAS default")
    parser.add_argument("--out", default=None,
                        help="JSON file (default bench/results/<date-time>.json)")
    args = parser.parse_args(argv)
    if args.threads:   # before NumPy loads its BLAS
        if "numpy" in sys.modules:
            parser.error("--threads must be set before NumPy is imported; run python -m bench")
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    from . import suite
    cases = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    unknown = sorted(set(cases) - set(CASES) - set(OPTIONAL_CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    repeats = args.repeats or (5 if args.quick else 15)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    suite.run(cases, repeats=repeats, quick=args.quick, with_torch=not args.no_torch, out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
