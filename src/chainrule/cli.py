"""`chainrule <command> ...`: each command lives in the module that owns its feature and
exposes `main(argv) -> exit code`; this file only dispatches, importing nothing heavy."""
import importlib
import sys

COMMANDS = {
    "train": ("chainrule.train_cli", "train a model on a bundled data set (the default job)"),
    "explain": ("chainrule.explain.cli", "print a backward pass as a chain-rule derivation"),
    "exercise": ("chainrule.explain.exercise_cli", "a backward pass as a worksheet with blanks"),
    "bench": ("chainrule.bench_cli", "run the benchmark suite against NumPy and PyTorch"),
}


def _usage():
    lines = ["usage: chainrule <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\n`chainrule <command> --help` for a command's options.")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"chainrule: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
