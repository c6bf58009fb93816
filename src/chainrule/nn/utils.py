"""Where PyTorch users look for gradient clipping (`nn.utils.clip_grad_norm_`); the
implementation lives with the optimizers."""
from ..optim.clip import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
