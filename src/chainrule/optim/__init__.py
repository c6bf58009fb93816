"""Optimizers, gradient clipping and learning-rate schedules (PyTorch's update equations).

>>> import chainrule as cr
>>> w = cr.tensor([1.0], requires_grad=True)
>>> opt = cr.optim.Adam([w], lr=0.1)
>>> sched = cr.optim.lr_scheduler.StepLR(opt, step_size=10)
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler",
           "clip_grad_norm_", "clip_grad_value_"]
