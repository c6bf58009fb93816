"""`.grad` follows PyTorch: backward accumulates into the existing `.grad` in place (a saved
reference sees the sum), a `.grad` never aliases the `gradient=` argument, and `gradient=` is
cast to the output's dtype (a float64 gradient never makes a float32 leaf's `.grad` float64).
zero_grad(set_to_none=False) and the clippers also change `.grad` in place, as in PyTorch."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def test_backward_accumulates_into_the_same_grad_tensor():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * 2.0).sum().backward()
    saved = w.grad
    (w * 3.0).sum().backward()
    assert w.grad is saved
    assert saved.tolist() == [5.0, 5.0]
    # PyTorch does the same
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    (tw * 2.0).sum().backward()
    tsaved = tw.grad
    (tw * 3.0).sum().backward()
    assert tw.grad is tsaved and tsaved.tolist() == saved.tolist()


def test_a_grad_set_by_hand_is_accumulated_into():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    mine = cr.zeros(2)
    w.grad = mine
    (w * w).sum().backward()
    assert w.grad is mine and mine.tolist() == [2.0, 4.0]


def test_in_place_accumulation_is_seen_by_a_graph_that_used_the_old_grad():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    v = cr.tensor([1.0, 1.0], requires_grad=True)
    y = (v * w.grad).sum()              # saves w.grad (version 0)
    (w * w).sum().backward()            # accumulates into it: version 1
    with pytest.raises(cr.errors.GraphError, match="modified in place"):
        y.backward()


@pytest.mark.parametrize("kind", ["tensor", "requires_grad", "array"])
@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("through", ["leaf", "add", "reshape"])
def test_grad_never_aliases_the_gradient_argument(kind, create_graph, through):
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = {"leaf": x, "add": x + 0.0, "reshape": x.reshape(3, 1).reshape(3)}[through]
    values = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    g = {"tensor": cr.tensor(values.copy()), "requires_grad": cr.tensor(values.copy(),
                                                                         requires_grad=True),
         "array": values.copy()}[kind]
    y.backward(gradient=g, create_graph=create_graph)
    raw = g.numpy() if isinstance(g, cr.Tensor) else g
    assert x.grad is not g
    assert not np.shares_memory(x.grad.numpy(), raw)
    raw += 1.0                           # the caller reuses its buffer
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_two_leaves_handed_one_gradient_under_create_graph_do_not_share_it():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward(create_graph=True)     # add gives both inputs the same g
    assert a.grad is not b.grad and not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad, b.grad = a.grad.detach(), b.grad.detach()
    (a * 3.0).sum().backward()                    # accumulates into a.grad only
    assert a.grad.tolist() == [4.0, 4.0] and b.grad.tolist() == [1.0, 1.0]


def test_create_graph_keeps_a_gradient_that_requires_grad_in_the_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    v = cr.tensor([3.0, 5.0], requires_grad=True)
    (x * x).backward(gradient=v, create_graph=True)     # x.grad = 2 x v
    x.grad.sum().backward()
    assert v.grad.tolist() == [2.0, 4.0]


@pytest.mark.parametrize("through", ["leaf", "mul"])
def test_a_float64_gradient_is_cast_to_the_outputs_dtype(through):
    x = cr.tensor([1.0, 2.0], requires_grad=True)            # float32
    y = x if through == "leaf" else x * 2.0
    if through == "mul":
        y.retain_grad()
    y.backward(gradient=cr.tensor(np.array([1.0, 1.0])))      # float64
    assert x.grad.dtype == cr.float32
    assert y.grad.dtype == cr.float32
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = tx if through == "leaf" else tx * 2.0
    if through == "mul":
        ty.retain_grad()
    ty.backward(gradient=torch.ones(2, dtype=torch.float64))
    assert tx.grad.dtype == ty.grad.dtype == torch.float32


def test_zero_grad_without_none_and_the_clippers_change_grad_in_place():
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    opt = cr.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    saved = w.grad
    cr.optim.clip_grad_norm_([w], max_norm=1.0)
    assert w.grad is saved and np.allclose(saved.tolist(), [0.6, 0.8], atol=1e-6)
    cr.optim.clip_grad_value_([w], 0.7)
    assert w.grad is saved and np.allclose(saved.tolist(), [0.6, 0.7], atol=1e-6)
    opt.zero_grad(set_to_none=False)
    assert w.grad is saved and saved.tolist() == [0.0, 0.0]
    (w * 1.0).sum().backward()
    assert w.grad is saved and saved.tolist() == [1.0, 1.0]
