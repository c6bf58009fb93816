"""float16: reductions accumulate in float32 and return float16, as in PyTorch (the mean of
1,000 × 100.0 is 100, not inf); gradients stay float16. bfloat16, which NumPy cannot compute
in, is refused with a DTypeError that says so wherever a user can ask for it."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import DTypeError

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

REDUCTIONS = {
    "sum": (lambda t: t.sum(), lambda t: t.sum()),
    "sum_axis": (lambda t: t.sum(1), lambda t: t.sum(1)),
    "mean": (lambda t: t.mean(), lambda t: t.mean()),
    "mean_axis": (lambda t: t.mean(0), lambda t: t.mean(0)),
    "var": (lambda t: t.var(), lambda t: t.var()),
    "var_axis": (lambda t: t.var(1), lambda t: t.var(1)),
    "std": (lambda t: t.std(), lambda t: t.std()),
    "norm": (lambda t: t.norm(), lambda t: t.norm()),
    "logsumexp": (lambda t: cr.logsumexp(t, 1), lambda t: torch.logsumexp(t, 1)),
}
DATA = {
    "big": np.full((10, 100), 100.0, dtype=np.float16),          # sums past 65504
    "many_small": np.full((10, 1000), 0.1, dtype=np.float16),     # a float16 running sum stalls
    "spread": (np.arange(1000, dtype=np.float16).reshape(10, 100) * np.float16(3.0)),
}


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_float16_reductions_accumulate_in_float32(name, data):
    """Values and gradients in float16, equal to the exact (float64) answer rounded to float16,
    within half precision. (PyTorch's float16 agrees on the values; its logsumexp and var
    gradients are computed in float16 and are up to 5% off here, so the reference is exact.)"""
    ours, theirs = REDUCTIONS[name]
    a = DATA[data]
    x = cr.tensor(a, requires_grad=True)
    exact = torch.tensor(a.astype(np.float64), requires_grad=True)
    y, z = ours(x), theirs(exact)
    assert y.dtype == cr.float16
    want = z.detach().numpy().astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(y.numpy().astype(np.float64), want, rtol=2e-3, atol=1e-3)
    half = theirs(torch.tensor(a)).numpy().astype(np.float64)        # PyTorch in float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), half, rtol=4e-3, atol=1e-3)
    y.sum().backward()
    z.sum().backward()
    assert x.grad.dtype == cr.float16
    g = exact.grad.numpy()
    np.testing.assert_allclose(x.grad.numpy().astype(np.float64), g, rtol=4e-3,
                               atol=2e-3 * np.abs(g).max())


def test_the_mean_of_a_thousand_hundreds_in_float16_is_a_hundred():
    x = cr.tensor(np.full(1000, 100.0, dtype=np.float16))
    assert x.mean().item() == 100.0 and x.mean().dtype == cr.float16
    assert x.var().item() == 0.0


def test_a_float16_model_trains_in_float16():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).to(cr.float16)
    x = cr.tensor(np.random.default_rng(0).standard_normal((256, 4)).astype(np.float16))
    loss = nn.functional.cross_entropy(model(x), cr.tensor(np.arange(256) % 3))
    assert loss.dtype == cr.float16 and np.isfinite(loss.item())
    loss.backward()
    for p in model.parameters():
        assert p.grad.dtype == cr.float16 and np.isfinite(p.grad.numpy()).all()


BF16_REQUESTS = {
    "tensor": lambda d: cr.tensor([1.0], dtype=d),
    "zeros": lambda d: cr.zeros(2, dtype=d),
    "full": lambda d: cr.full((2,), 1.0, dtype=d),
    "randn": lambda d: cr.randn(2, dtype=d),
    "arange": lambda d: cr.arange(3, dtype=d),
    "zeros_like": lambda d: cr.zeros_like(cr.ones(2), dtype=d),
    "astype": lambda d: cr.ones(2).astype(d),
    "set_default_dtype": lambda d: cr.set_default_dtype(d),
    "Linear": lambda d: nn.Linear(2, 2, dtype=d),
    "Module.to": lambda d: nn.Linear(2, 2).to(d),
}


@pytest.mark.parametrize("spelling", ["bfloat16", "bf16", "torch.bfloat16", "ml_dtypes"])
@pytest.mark.parametrize("where", BF16_REQUESTS)
def test_bfloat16_is_refused_clearly(where, spelling):
    if spelling == "torch.bfloat16":
        dtype = torch.bfloat16
    elif spelling == "ml_dtypes":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        dtype = spelling
    with pytest.raises(DTypeError, match="bfloat16 is not supported.*NumPy"):
        BF16_REQUESTS[where](dtype)
    assert cr.get_default_dtype() == cr.float32


def test_a_bfloat16_array_is_refused_clearly():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    a = np.ones(3, dtype=ml_dtypes.bfloat16)
    with pytest.raises(DTypeError, match="bfloat16 is not supported"):
        cr.tensor(a)
