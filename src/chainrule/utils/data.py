"""`torch.utils.data`'s names: the same objects as `chainrule.data` (an alias, not a copy).

>>> from chainrule.utils.data import DataLoader, TensorDataset, random_split
>>> import chainrule as cr
>>> DataLoader is cr.data.DataLoader
True
"""
from ..data import (DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler, Subset,
                    TensorDataset, default_collate, random_split)

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate",
           "random_split", "Sampler", "SequentialSampler", "DistributedSampler"]
