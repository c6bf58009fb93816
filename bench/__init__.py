"""chainrule's benchmark suite: chainrule side by side with hand-written NumPy backprop and
PyTorch on CPU. Run `python -m bench` (or `chainrule bench`) from a checkout; see README.md."""

CASES = ("mlp", "cnn", "overhead", "chain", "startup")
