"""Parameter: a Tensor that a Module registers as trainable when it is assigned as an attribute."""
from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad and is collected by `Module.parameters()`.

    Its `.name` is filled with its qualified name ("0.weight", "fc1.bias") when the module
    tree is built, unless the user gave it one, so `explain` prints readable names.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> p = nn.Parameter(cr.zeros(2, 3))
    >>> p.requires_grad, p.shape
    (True, (2, 3))
    """

    __slots__ = ("_auto_name",)

    def __init__(self, data=None, requires_grad=True, name=None):
        if data is None:
            data = []
        # an array's own dtype, said explicitly: a device array keeps it too
        dtype = data.dtype if isinstance(data, Tensor) or backend.is_array(data) else None
        super().__init__(data, dtype=dtype, requires_grad=requires_grad, name=name)
        self._auto_name = name is None

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (self._data, self.requires_grad, None if self._auto_name else self.name))
