"""`chainrule bench [options]`: run the benchmark suite (bench/ in a source checkout).

The suite is not part of the installed package (it needs PyTorch and hand-written NumPy
references that users do not want to install), so this command finds the checkout that
chainrule was installed from (`pip install -e .`) and runs `python -m bench` there.
"""
import os
import subprocess
import sys


def find_checkout():
    """The repository root holding bench/, or None when chainrule is not run from one."""
    here = os.path.dirname(os.path.abspath(__file__))           # .../src/chainrule
    root = os.path.dirname(os.path.dirname(here))                # .../ (the checkout)
    return root if os.path.isfile(os.path.join(root, "bench", "__main__.py")) else None


def main(argv=None):
    """Run the suite with `argv` (see `chainrule bench --help`); returns its exit code.

    >>> from chainrule.bench_cli import main
    >>> main(["--quick", "--cases", "startup", "--no-torch"])  # doctest: +SKIP
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    root = find_checkout()
    if root is None:
        print("chainrule bench: the benchmark suite lives in bench/ of chainrule's source "
              "repository and is not installed with the package. Clone the repository, "
              "`pip install -e .` there, then run `chainrule bench` (or `python -m bench` "
              "from the repository root).", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "bench", *argv], cwd=root)
