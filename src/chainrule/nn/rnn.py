"""Recurrent layers: RNN (tanh or relu) and LSTM, with PyTorch's parameter names, shapes, gate
order (input, forget, cell, output) and init U(±1/√hidden_size), so weights load by name.

The input-to-hidden products of all time steps are one matrix product; only the hidden-to-
hidden step loops over time.
"""
import math

from .. import ops
from ..errors import ShapeError
from . import functional as F
from . import init
from .layers import check_features, empty_parameter, place
from .module import Module


class _Recurrent(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None, device=None):
        super().__init__()
        if bidirectional:
            raise NotImplementedError(f"{type(self).__name__}: bidirectional=True is not "
                                      "supported; run a second layer on the reversed sequence")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        g = self._gates * hidden_size
        for k in range(num_layers):
            width = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", empty_parameter((g, width), dtype))
            setattr(self, f"weight_hh_l{k}", empty_parameter((g, hidden_size), dtype))
            if bias:
                setattr(self, f"bias_ih_l{k}", empty_parameter((g,), dtype))
                setattr(self, f"bias_hh_l{k}", empty_parameter((g,), dtype))
        self.reset_parameters()
        place(self, device)

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _layer_params(self, k):
        b = (getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")) if self.bias \
            else None
        return getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"), b

    def _prepare(self, x):
        """x as (L, N, I) and whether it came unbatched (L, I)."""
        x = ops.as_tensor(x)
        if x.ndim not in (2, 3):
            raise ShapeError(f"{self.layer_path()} needs input (seq, batch, features)"
                             f"{' with batch_first' if self.batch_first else ''} or (seq, "
                             f"features), got shape {tuple(x.shape)}")
        check_features(self, x, self.input_size, -1, "features")
        if x.ndim == 2:
            return x.unsqueeze(1), True
        return (x.transpose(0, 1) if self.batch_first else x), False

    def _initial(self, state, n, x, unbatched):
        shape = (self.num_layers, n, self.hidden_size)
        if state is None:
            from ..creation import zeros
            return zeros(shape, dtype=x.dtype, device=x.device)
        state = ops.as_tensor(state)
        if unbatched and state.ndim == 2:
            state = state.unsqueeze(1)
        if tuple(state.shape) != shape:
            raise ShapeError(f"{self.layer_path()}: initial state must have shape {shape}, got "
                             f"{tuple(state.shape)}")
        return state

    def _run(self, x, states, step):
        """Run every layer over time; `states` is a list (per state kind) of (layers, N, H)."""
        finals = [[] for _ in states]
        for k in range(self.num_layers):
            w_ih, w_hh, b = self._layer_params(k)
            xw = F.linear(x, w_ih, b)            # all time steps at once: (L, N, gates·H)
            w_hh_t = w_hh.T
            carry = [s[k] for s in states]
            outs = []
            for t in range(x.shape[0]):
                carry = step(xw[t] + carry[0] @ w_hh_t, carry)
                outs.append(carry[0])
            x = ops.stack(outs, 0)
            if self.dropout and self.training and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
            for f, c in zip(finals, carry):
                f.append(c)
        return x, [ops.stack(f, 0) for f in finals]

    def _finish(self, out, unbatched):
        if unbatched:
            return out.squeeze(1)
        return out.transpose(0, 1) if self.batch_first else out

    def flatten_parameters(self):
        """Nothing to do (PyTorch packs the weights for cuDNN; NumPy needs no packing)."""

    def _short(self):
        return f"{self.input_size}->{self.hidden_size}"

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        return s


class RNN(_Recurrent):
    """Elman RNN: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) (or relu).
    Returns (output, h_n) like PyTorch.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> out, h = nn.RNN(3, 5, batch_first=True)(cr.randn(2, 7, 3))
    >>> out.shape, h.shape
    ((2, 7, 5), (1, 2, 5))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=None,
                 device=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, device)

    def forward(self, x, h0=None):
        x, unbatched = self._prepare(x)
        h0 = self._initial(h0, x.shape[1], x, unbatched)
        act = ops.tanh if self.nonlinearity == "tanh" else ops.relu
        out, (h,) = self._run(x, [h0], lambda pre, carry: [act(pre)])
        return self._finish(out, unbatched), (h.squeeze(1) if unbatched else h)


class LSTM(_Recurrent):
    """Long short-term memory, PyTorch's equations and gate order (i, f, g, o):
    c_t = f⊙c_{t-1} + i⊙g, h_t = o⊙tanh(c_t). Returns (output, (h_n, c_n)).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    >>> out, (h, c) = lstm(cr.randn(2, 5, 3))
    >>> out.shape, h.shape, c.shape
    ((2, 5, 4), (2, 2, 4), (2, 2, 4))
    """
    _gates = 4

    def forward(self, x, state=None):
        x, unbatched = self._prepare(x)
        h0, c0 = (None, None) if state is None else state
        h0 = self._initial(h0, x.shape[1], x, unbatched)
        c0 = self._initial(c0, x.shape[1], x, unbatched)
        out, (h, c) = self._run(x, [h0, c0], self._cell)
        if unbatched:
            h, c = h.squeeze(1), c.squeeze(1)
        return self._finish(out, unbatched), (h, c)

    def _cell(self, pre, carry):
        i, f, g, o = pre.split(self.hidden_size, axis=-1)
        c = f.sigmoid() * carry[1] + i.sigmoid() * g.tanh()
        return [o.sigmoid() * c.tanh(), c]
