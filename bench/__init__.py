"""chainrule's benchmark suite: chainrule side by side with hand-written NumPy backprop and
PyTorch on CPU. Run `python -m bench` (or `chainrule bench`) from a checkout; see README.md."""

CASES = ("mlp", "cnn", "overhead", "chain", "startup", "compile")
# Run only when named in --cases: `distributed` needs mpiexec (chainrule[distributed]).
OPTIONAL_CASES = ("distributed",)
