"""`chainrule explain`: print a seed example's backward pass as a chain-rule derivation;
`chainrule exercise`: the same as a worksheet with blanks (and its answer key).

    chainrule explain --example seed-004 --round 2
    chainrule explain --example seed-003 --format markdown --graph net.svg --highlight W_X
    chainrule explain --example seed-003 --full --format json
    chainrule explain --example seed-004 --round 2 --html seed-004.html
    chainrule explain --list
    chainrule exercise --example seed-004 --round 2 --hide chain
    chainrule exercise --example seed-004 --round 2 --hide chain --answers
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
    p.add_argument("--format", choices=("text", "markdown", "latex", "json"), default="text",
                   help="output format (latex: a complete document for pdflatex; json: the "
                        "data model of the main explanation, docs/explain_schema.md)")
    p.add_argument("--full", action="store_true",
                   help="write every entry of every tensor (default: summarise big ones)")
    p.add_argument("--graph", metavar="FILE",
                   help="also draw the main network's graph (.svg, .png, .pdf or .dot)")
    p.add_argument("--highlight", metavar="NAME",
                   help="parameter whose paths to the loss the graph draws in red")
    p.add_argument("--html", metavar="FILE",
                   help="also write the backward-pass explorer: one self-contained HTML page "
                        "(works offline) that steps through the example's derivations")
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
        kwargs = {"round": args.round, "verify": args.verify, "full": args.full}
        if args.lr is not None:
            kwargs["lr"] = args.lr
        example = build(args.example, **kwargs)
        if args.format == "json":
            sys.stdout.write(_main(example).to_json(indent=1) + "\n")
        elif args.format == "latex":
            sys.stdout.write(example.render("latex", standalone=True))
        else:
            sys.stdout.write(example.render(args.format))
        if args.graph:
            _write_graph(_main(example), args.graph, args.highlight)
        if args.html:
            _write_html(example, args.html)
    except ChainruleError as exc:
        print(f"chainrule explain: {exc}", file=sys.stderr)
        return 1
    return 0


def _main(example):
    """The example's main explanation (its first)."""
    found = example.explanations()
    if not found:
        raise ChainruleError(f"the example {example.name!r} has no derivation of its own to "
                             "draw, export or turn into a worksheet")
    return found[0]


def _write_html(example, path):
    """The explorer page of every derivation of the example (a menu picks one)."""
    from . import explorer
    parts = [(heading, part) for heading, part in example.parts if hasattr(part, "blocks")]
    if not parts:
        _main(example)                      # says why there is nothing to show
    text = explorer.page(parts, title=f"{example.name}: {example.title}")
    explorer.write(path, text)
    print(f"\nexplorer page written to {path} ({len(text.encode()) // 1024} KiB)",
          file=sys.stderr)
    return path


def _write_graph(rep, path, highlight):
    """The picture, or without graphviz its .dot file and how to render it."""
    import warnings
    from .graph import GraphvizWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GraphvizWarning)
        written = rep.graph(highlight=highlight).save(path)
    for w in caught:
        if issubclass(w.category, GraphvizWarning):
            print(f"\nchainrule explain: {w.message}", file=sys.stderr)
    if written == path:
        print(f"\ngraph written to {path}", file=sys.stderr)
    return written


def _exercise_parser():
    from .seeds import SEEDS
    p = argparse.ArgumentParser(
        prog="chainrule exercise",
        description="A seed example's derivation as a worksheet: numbered blanks where the "
                    "hidden numbers were, and (--answers) the key.")
    p.add_argument("--example", choices=sorted(SEEDS), required=True)
    p.add_argument("--hide", default="chain",
                   help="what to hide: forward, local, chain, update, all, or quantity labels "
                        "separated by commas (e.g. '∂Loss/∂w_o,y_h'); default chain")
    p.add_argument("--round", type=int, default=None, metavar="K",
                   help="textbook rounding to K decimals (seed 004 uses 2)")
    p.add_argument("--answers", action="store_true", help="print the answer key instead")
    p.add_argument("--format", choices=("text", "markdown", "latex"), default="text")
    p.add_argument("--sig", type=int, default=3,
                   help="significant figures an answer must match (default 3)")
    return p


def exercise_main(argv=None):
    """`chainrule exercise`; returns the exit code."""
    args = _exercise_parser().parse_args(argv)
    from .seeds import build
    hide = args.hide if args.hide in ("forward", "local", "chain", "update", "all") else \
        [h.strip() for h in args.hide.split(",") if h.strip()]
    try:
        rep = _main(build(args.example, round=args.round))
        ws = rep.exercise(hide=hide, sig=args.sig)
        if args.answers:
            sys.stdout.write(ws.key_text())
        elif args.format == "latex":
            sys.stdout.write(ws.latex(standalone=True))
        else:
            sys.stdout.write(ws.markdown() if args.format == "markdown" else ws.text())
    except ChainruleError as exc:
        print(f"chainrule exercise: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
