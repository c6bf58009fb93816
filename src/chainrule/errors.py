"""chainrule's exceptions: one base class, each also a subclass of the matching built-in,
so `except ValueError` keeps working for code that does not know chainrule."""


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError):
    """Shapes that do not fit together (broadcasting, matmul, reshape, layer sizes)."""


class DTypeError(ChainruleError, TypeError):
    """A dtype that the operation cannot take (e.g. an integer tensor asked to require grad)."""


class IndexError_(ChainruleError, IndexError):
    """An index outside a tensor's bounds."""


class GraphError(ChainruleError, RuntimeError):
    """Misuse of the autograd graph: freed graph, missing `gradient=`, in-place change."""


class GradcheckError(ChainruleError, AssertionError):
    """Analytical and numerical gradients disagree."""


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint or state dict that cannot be loaded as asked."""


class AnomalyError(ChainruleError, RuntimeError):
    """A NaN or inf found by `detect_anomaly`."""


class OptimizerError(ChainruleError, ValueError):
    """An optimizer built wrongly: no parameters, a parameter given twice, a bad option."""


class DomainError(ChainruleError, ValueError):
    """A value outside what an operation accepts (e.g. probabilities outside [0, 1])."""
