"""PyTorch's dim=/keepdim= spellings, (values, indices) from max/min with dim=, and .t()."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch", reason="torch is the reference for PyTorch's spellings")


def _pair():
    data = np.random.default_rng(0).standard_normal((3, 4))
    return cr.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "logsumexp"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_take_dim_and_keepdim_like_torch(name, keepdim):
    x, t = _pair()
    ours = getattr(x, name)(dim=1, keepdim=keepdim)
    theirs = getattr(t, name)(dim=1, keepdim=keepdim)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10)
    np.testing.assert_array_equal(getattr(cr, name)(x, dim=1, keepdim=keepdim).numpy(),
                                  ours.numpy())


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_with_dim_return_values_and_indices(name):
    x, t = _pair()
    values, indices = getattr(x, name)(dim=1)
    t_values, t_indices = getattr(t, name)(dim=1)
    np.testing.assert_array_equal(values.numpy(), t_values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    values.sum().backward()
    t_values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    kept = getattr(cr, name)(x, dim=0, keepdim=True)
    assert kept.values.shape == (1, 4) and kept.indices.shape == (1, 4)
    assert getattr(x, name)(axis=1).shape == (3,)     # NumPy style: values only
    values, indices = getattr(x, name)(1)             # a positional dim is PyTorch's
    t_values, t_indices = getattr(t, name)(1)
    np.testing.assert_array_equal(values.numpy(), t_values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())


def test_shape_functions_take_dim():
    x, t = _pair()
    assert cr.cat([x, x], dim=1).shape == torch.cat([t, t], dim=1).shape
    assert cr.stack([x, x], dim=2).shape == torch.stack([t, t], dim=2).shape
    assert [p.shape for p in x.split(3, dim=1)] == [tuple(p.shape) for p in t.split(3, dim=1)]
    assert x.unsqueeze(dim=0).squeeze(dim=0).shape == (3, 4)
    np.testing.assert_allclose(x.softmax(dim=0).numpy(), t.softmax(dim=0).detach().numpy())
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), t.argmax(dim=1).numpy())
    np.testing.assert_array_equal(cr.argmin(x).numpy(), torch.argmin(t).numpy())


def test_t_transposes_matrices_only():
    x, t = _pair()
    np.testing.assert_array_equal(x.t().numpy(), t.t().detach().numpy())
    assert cr.tensor([1.0, 2.0]).t().shape == (2,)
    with pytest.raises(cr.errors.ShapeError, match="transpose"):
        cr.zeros(2, 2, 2).t()


def test_both_spellings_at_once_is_an_error():
    x, _ = _pair()
    with pytest.raises(TypeError, match="axis= or dim="):
        x.sum(axis=1, dim=1)
    with pytest.raises(TypeError, match="axis= or dim="):
        x.max(axis=1, dim=1)


@pytest.mark.parametrize("p", [2, 1, float("inf")])
@pytest.mark.parametrize("dim", [None, 1])
def test_norm_matches_torch_including_a_zero_row(p, dim):
    data = np.random.default_rng(1).standard_normal((3, 4))
    data[1] = 0.0                                     # the 2-norm's gradient there is 0, not nan
    x, t = cr.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    ours, theirs = x.norm(p=p, dim=dim), t.norm(p=p, dim=dim)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10)
    assert cr.gradcheck(lambda a: a.norm(p=p, dim=dim), [cr.tensor(data[[0, 2]])])


def test_norm_rejects_unsupported_p():
    with pytest.raises(cr.errors.ShapeError, match="p=3"):
        cr.norm(cr.ones(3), p=3)
