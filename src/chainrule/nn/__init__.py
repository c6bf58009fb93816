"""Neural networks: Module and containers, layers, activations, losses, init, functional.

>>> import chainrule as cr
>>> from chainrule import nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> loss = nn.CrossEntropyLoss()(model(cr.randn(5, 4)), cr.tensor([0, 1, 2, 0, 1]))
>>> loss.backward()
>>> model[0].weight.grad.shape
(8, 4)
"""
from . import functional, init, parallel, utils
from .activation import (GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus,
                         Tanh)
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .layers import Dropout, Embedding, Flatten, Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss)
from .module import Module, ModuleDict, ModuleList, Sequential
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .parameter import Parameter
from .rnn import LSTM, RNN
