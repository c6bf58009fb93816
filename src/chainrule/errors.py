"""chainrule's exceptions: one base class, each also a subclass of the matching built-in,
so `except ValueError` keeps working for code that does not know chainrule."""


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose.

    >>> import chainrule as cr
    >>> try:
    ...     cr.ones(2) + cr.ones(3)
    ... except cr.errors.ChainruleError as exc:
    ...     print(type(exc).__name__, isinstance(exc, ValueError))
    ShapeError True
    """


class ShapeError(ChainruleError, ValueError):
    """Shapes that do not fit together (broadcasting, matmul, reshape, layer sizes).

    >>> import chainrule as cr
    >>> cr.ones(2) + cr.ones(3)
    Traceback (most recent call last):
        ...
    chainrule.errors.ShapeError: add: inputs (2,) float32, (3,) float32: operands could not ...
    """


class DTypeError(ChainruleError, TypeError):
    """A dtype that the operation cannot take (e.g. an integer tensor asked to require grad).

    >>> import chainrule as cr
    >>> cr.tensor([1, 2], requires_grad=True)
    Traceback (most recent call last):
        ...
    chainrule.errors.DTypeError: requires_grad: a tensor of dtype int64 cannot require grad; ...
    """


class IndexError_(ChainruleError, IndexError):
    """An index outside a tensor's bounds.

    >>> import chainrule as cr
    >>> cr.tensor([1.0, 2.0])[5]
    Traceback (most recent call last):
        ...
    chainrule.errors.IndexError_: getitem: inputs (2,) float32: index 5 is out of bounds ...
    """


class GraphError(ChainruleError, RuntimeError):
    """Misuse of the autograd graph: freed graph, missing `gradient=`, in-place change.

    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> y = x * x
    >>> y.backward()
    >>> y.backward()
    Traceback (most recent call last):
        ...
    chainrule.errors.GraphError: Trying to backward through the graph a second time ...
    """


class GradcheckError(ChainruleError, AssertionError):
    """Analytical and numerical gradients disagree.

    >>> import chainrule as cr
    >>> issubclass(cr.errors.GradcheckError, AssertionError)
    True
    """


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint or state dict that cannot be loaded as asked.

    >>> from chainrule import nn
    >>> nn.Linear(2, 2).load_state_dict({})
    Traceback (most recent call last):
        ...
    chainrule.errors.CheckpointError: load_state_dict into Linear: missing keys: weight, bias. ...
    """


class AnomalyError(ChainruleError, RuntimeError):
    """A NaN or inf found by `detect_anomaly`.

    >>> import chainrule as cr, numpy as np
    >>> x = cr.tensor([0.0], requires_grad=True)
    >>> with np.errstate(divide="ignore"), cr.detect_anomaly():
    ...     cr.sqrt(x).sum().backward()
    Traceback (most recent call last):
        ...
    chainrule.errors.AnomalyError: detect_anomaly: the backward of 'sqrt' produced a non-finite ...
    """


class OptimizerError(ChainruleError, ValueError):
    """An optimizer built wrongly: no parameters, a parameter given twice, a bad option.

    >>> import chainrule as cr
    >>> cr.optim.SGD([], lr=0.1)
    Traceback (most recent call last):
        ...
    chainrule.errors.OptimizerError: SGD got an empty parameter list: nothing to optimize. ...
    """


class DomainError(ChainruleError, ValueError):
    """A value outside what an operation accepts (e.g. probabilities outside [0, 1]).

    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.binary_cross_entropy(cr.tensor([2.0]), cr.tensor([1.0]))
    Traceback (most recent call last):
        ...
    chainrule.errors.DomainError: binary_cross_entropy: input must lie in [0, 1], found 2.0; ...
    """


class DataError(ChainruleError, ValueError):
    """Data that cannot be used as asked, e.g. a loader that yields no batches (training on
    it would report a loss of 0.0 that means nothing).

    >>> import chainrule as cr
    >>> loader = cr.data.DataLoader(cr.data.TensorDataset(cr.ones(3, 2), cr.zeros(3)),
    ...                             batch_size=4, drop_last=True)
    >>> cr.train.evaluate(cr.nn.Linear(2, 2), cr.nn.MSELoss(), loader)
    Traceback (most recent call last):
        ...
    chainrule.errors.DataError: evaluate: the loader yields no samples: a DataLoader over ...
    """


class ExportError(ChainruleError, RuntimeError):
    """A model that cannot be written as asked (e.g. an operation ONNX export cannot
    translate); the message names the operation and the layer it came from.

    >>> import chainrule as cr
    >>> issubclass(cr.errors.ExportError, RuntimeError)
    True
    """


class DistributedError(ChainruleError, RuntimeError):
    """A collective across processes that cannot complete: no process group, a rank that did
    not join within the timeout, tensors that do not match across ranks. The message names the
    operation, this rank and the world size (chainrule.distributed).

    >>> import chainrule as cr
    >>> issubclass(cr.errors.DistributedError, RuntimeError)
    True
    """


class CompileError(ChainruleError, RuntimeError):
    """A function `cr.compile` cannot capture as asked (it reads a tensor's value, or uses an
    array computed outside chainrule's operations), or a checked replay that differs from the
    eager run; the message names the line and the way out.

    >>> import chainrule as cr
    >>> issubclass(cr.errors.CompileError, RuntimeError)
    True
    """


class DeviceError(ChainruleError, ValueError, RuntimeError):
    """A device problem: a name chainrule does not have ("mps"), CUDA asked for where CuPy or
    a GPU is missing (the message gives the install line), tensors of two devices in one op,
    or host-only use of a device tensor (`.numpy()`: call `.cpu()` first). A ValueError (a bad
    argument) and a RuntimeError (what PyTorch raises for these).

    >>> import chainrule as cr
    >>> issubclass(cr.errors.DeviceError, RuntimeError)
    True
    """


class AmpError(ChainruleError, ValueError, RuntimeError):
    """Mixed precision used wrongly (chainrule.amp): a GradScaler call out of order
    (`unscale_` twice before `update`, `step` twice, a scaler used before `scale(loss)`), or a
    bad argument to `autocast` or `GradScaler`. A RuntimeError (what PyTorch raises for the
    calls out of order) and a ValueError (what it raises for the bad arguments).

    >>> import chainrule as cr
    >>> cr.amp.GradScaler("cpu").update()
    Traceback (most recent call last):
        ...
    chainrule.errors.AmpError: GradScaler.update: the scaler has no scale yet: ...
    """
