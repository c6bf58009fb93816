"""Inputs that crashed with bare Python errors, and a backward that was quadratic.

- max_pool2d with a kernel of 182 or more (k² window positions overflowed int16);
- a Python int outside an integer tensor's range (uint8 + (-1), uint8 * 300) wraps modulo
  2^bits as in PyTorch; outside int64 it is a DTypeError;
- cross_entropy on an empty batch is nan (PyTorch), with an empty gradient, not a
  ZeroDivisionError in backward;
- stack/cat backward is linear in the number of pieces (each input's block offset is computed
  once per node, and the engine slices g instead of calling the rule with all k inputs)."""
import time
import warnings

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.errors import DTypeError
from chainrule.ops import REGISTRY

torch = pytest.importorskip("torch")
TF = torch.nn.functional


# ---------------------------------------------------------------- max_pool2d, large kernels

@pytest.mark.parametrize("k", [181, 182, 200])
@pytest.mark.parametrize("path", ["tiled", "untiled", "create_graph"])
def test_max_pool2d_with_a_large_kernel(k, path):
    extra = 3 if path == "untiled" else 0
    a = np.random.default_rng(k).standard_normal((1, 2, k + extra, k + extra)).astype(np.float32)
    x = cr.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y, z = F.max_pool2d(x, k), TF.max_pool2d(t, k)
    np.testing.assert_array_equal(y.numpy(), z.detach().numpy())
    y.sum().backward(create_graph=path == "create_graph")
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


# ---------------------------------------------------------------- integer scalars wrap

INT_CASES = {
    "uint8 + -1": lambda u, i: u + (-1),
    "uint8 * 300": lambda u, i: u * 300,
    "-1 + uint8": lambda u, i: -1 + u,
    "300 * uint8": lambda u, i: 300 * u,
    "uint8 - 300": lambda u, i: u - 300,
    "uint8 > 300": lambda u, i: u > 300,
    "uint8 == 256": lambda u, i: u == 256,
    "int8 + 200": lambda u, i: i + 200,
    "int8 * 3": lambda u, i: i * 3,
    "int8 - 1000": lambda u, i: i - 1000,
}


@pytest.mark.parametrize("case", INT_CASES)
def test_python_ints_outside_an_integer_dtype_wrap_as_in_pytorch(case):
    u, i = np.array([0, 2, 200], np.uint8), np.array([100, -100, 7], np.int8)
    ours = INT_CASES[case](cr.tensor(u), cr.tensor(i))
    theirs = INT_CASES[case](torch.tensor(u), torch.tensor(i))
    assert ours.tolist() == theirs.tolist()
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")


@pytest.mark.parametrize("dtype", ["uint8", "int64"])
def test_an_int_beyond_int64_is_a_dtype_error(dtype):
    x = cr.tensor([1, 2], dtype=dtype)
    with pytest.raises(DTypeError, match="does not fit in int64"):
        x + 2 ** 70
    with pytest.raises(DTypeError):
        cr.tensor(2 ** 70)


# ---------------------------------------------------------------- empty batches

def _labels():
    return np.zeros(0, np.int64)


EMPTY_CE = {
    "labels": dict(),
    "labels-weight": dict(weight=np.ones(3, np.float32)),
    "labels-smoothing": dict(label_smoothing=0.1),
    "labels-sum": dict(reduction="sum"),
    "labels-none": dict(reduction="none"),
    "probs": dict(probs=True),
    "probs-smoothing": dict(probs=True, label_smoothing=0.1),
    "nll": dict(nll=True),
}


@pytest.mark.parametrize("case", EMPTY_CE)
def test_cross_entropy_of_an_empty_batch_is_nan_as_in_pytorch(case):
    kw = dict(EMPTY_CE[case])
    probs, nll = kw.pop("probs", False), kw.pop("nll", False)
    results = []
    for lib in (cr, torch):
        x = lib.zeros(0, 3, requires_grad=True) if lib is torch else \
            cr.zeros(0, 3, requires_grad=True)
        target = lib.zeros(0, 3) if probs else lib.tensor(_labels())
        args = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        fn = (F.nll_loss if nll else F.cross_entropy) if lib is cr else \
            (TF.nll_loss if nll else TF.cross_entropy)
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # no RuntimeWarning from 0/0 either
            loss = fn(x, target, **args)
            loss.sum().backward()
        value = loss.numpy() if lib is cr else loss.detach().numpy()
        results.append((value, tuple(x.grad.shape)))
    (ours, our_grad), (theirs, their_grad) = results
    np.testing.assert_array_equal(ours, theirs)       # nan where PyTorch has nan
    assert our_grad == their_grad == (0, 3)


# ---------------------------------------------------------------- stack / cat scaling

def test_the_concatenate_block_equals_its_rule():
    prim = REGISTRY["concatenate"]
    xs = [cr.tensor(np.arange(n * 2.0).reshape(2, n), requires_grad=True) for n in (1, 3, 2)]
    y = cr.concatenate(xs, axis=1)
    node = y.grad_fn
    g = np.random.default_rng(0).standard_normal(y.shape)
    arrays = [t.numpy() for t in node.inputs]
    for i in range(len(xs)):
        want = prim.vjp_rule(i)(g, y.numpy(), *arrays, **node.params)
        np.testing.assert_array_equal(g[prim.block(node.params, i)], want)
    assert "offsets of 3 blocks" in repr(node.params["offsets"])


@pytest.mark.parametrize("create_graph", [False, True])
def test_stack_and_cat_gradients_with_many_pieces(create_graph):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 1 + i % 3)) for i in range(50)]
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    w = rng.standard_normal((2, sum(a.shape[1] for a in arrays)))
    (cr.cat(xs, axis=-1) * cr.tensor(w)).sum().backward(create_graph=create_graph)
    (torch.cat(ts, dim=-1) * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    ys = [cr.tensor(a[:, :1], requires_grad=True) for a in arrays]
    cr.stack(ys, axis=1).sum().backward()
    assert all(y.grad.tolist() == [[1.0], [1.0]] for y in ys)


def test_stack_backward_of_16000_pieces_is_linear():
    """16,000 pieces: about 0.2 s for the backward (it was 37 s, quadratic; PyTorch 0.4 s)."""
    xs = [cr.tensor(np.ones(4, np.float32), requires_grad=True) for _ in range(16000)]
    y = cr.stack(xs).sum()
    start = time.perf_counter()
    y.backward()
    assert time.perf_counter() - start < 5.0
    assert xs[0].grad.tolist() == xs[-1].grad.tolist() == [1.0] * 4
