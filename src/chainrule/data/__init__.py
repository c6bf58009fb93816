"""Datasets, DataLoader and bundled data (digits, 5,000 MNIST images, XOR, moons, spirals).

>>> import chainrule as cr
>>> X, y = cr.data.load_digits()
>>> loader = cr.data.DataLoader(cr.data.TensorDataset(X, y), batch_size=64, shuffle=True)
"""
from .dataset import Dataset, Subset, TensorDataset, random_split, train_val_split
from .datasets import (DATASETS, MissingDependencyError, load_digits, load_mnist_5k,
                       mnist_5k_path, spirals, two_moons, xor)
from .loader import DataLoader, default_collate
from .sampler import DistributedSampler, Sampler, SequentialSampler
from .worker import WorkerInfo, get_worker_info

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "default_collate",
           "random_split", "train_val_split", "load_digits", "load_mnist_5k", "mnist_5k_path",
           "xor", "two_moons", "spirals", "DATASETS", "MissingDependencyError",
           "Sampler", "SequentialSampler", "DistributedSampler", "get_worker_info",
           "WorkerInfo"]
