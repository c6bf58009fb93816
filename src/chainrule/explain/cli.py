"""`chainrule explain`: print a seed example's backward pass as a chain-rule derivation.

    chainrule explain --example seed-004 --round 2
    chainrule explain --example seed-003 --format markdown --graph net.svg --highlight W_X
    chainrule explain --list
"""
import argparse
import sys

from ..errors import ChainruleError


def _parser():
    from .seeds import SEEDS
    p = argparse.ArgumentParser(
        prog="chainrule explain",
        description="Show a backward pass step by step: forward values, local derivatives, "
                    "chain-rule products, the layer view and an update step.")
    p.add_argument("--example", choices=sorted(SEEDS), help="which seed example to explain")
    p.add_argument("--list", action="store_true", help="list the examples and exit")
    p.add_argument("--round", type=int, default=None, metavar="K",
                   help="textbook rounding: function values rounded to K decimals (seed 004 "
                        "uses 2)")
    p.add_argument("--format", choices=("text", "markdown", "latex"), default="text")
    p.add_argument("--graph", metavar="FILE",
                   help="also draw the main network's graph (.svg, .png, .pdf or .dot)")
    p.add_argument("--highlight", metavar="NAME",
                   help="parameter whose paths to the loss the graph draws in red")
    p.add_argument("--verify", action="store_true",
                   help="check every local derivative with a finite difference (✓/✗)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the update step (default: the seed's own)")
    return p


def main(argv=None):
    """Entry point; returns the exit code (0 ok, 1 a chainrule error, 2 bad options)."""
    args = _parser().parse_args(argv)
    from .seeds import SEEDS, build
    if args.list or not args.example:
        for name in sorted(SEEDS):
            print(f"{name}  {SEEDS[name].title}")
        return 0 if args.list else 2
    try:
        kwargs = {"round": args.round, "verify": args.verify}
        if args.lr is not None:
            kwargs["lr"] = args.lr
        example = build(args.example, **kwargs)
        sys.stdout.write(example.render(args.format))
        if args.graph:
            rep = example.explanations()[0]
            path = rep.graph(highlight=args.highlight).save(args.graph)
            print(f"\ngraph written to {path}", file=sys.stderr)
    except ChainruleError as exc:
        print(f"chainrule explain: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
