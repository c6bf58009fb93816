"""`chainrule exercise`: a seed example as a worksheet (see explain/cli.py)."""
import sys

from .cli import exercise_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
