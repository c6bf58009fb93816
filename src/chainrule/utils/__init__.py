"""Where PyTorch programs import data tools from: `chainrule.utils.data` is `chainrule.data`
under PyTorch's name, so `from torch.utils.data import DataLoader, TensorDataset` ports as
`from chainrule.utils.data import DataLoader, TensorDataset`.

>>> import chainrule as cr
>>> cr.utils.data.DataLoader is cr.data.DataLoader
True
"""
from . import data  # noqa: F401
