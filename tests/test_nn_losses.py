"""Losses: PyTorch parity (values and gradients, float64, tight tolerance) for every reduction,
gradcheck, the seeds' conventions, numerical stability at logits of ±1e4, and clear errors."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import DomainError, DTypeError, IndexError_, ShapeError
from chainrule.nn import functional as F

try:
    import torch
except ImportError:   # the parity tests below say so when they skip
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch parity tests need torch installed")

RNG = np.random.default_rng(42)
LOGITS = RNG.standard_normal((6, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2, 3])
PROBS = RNG.dirichlet(np.ones(4), size=6)
P = RNG.uniform(0.05, 0.95, (5, 3))
T = RNG.uniform(0.0, 1.0, (5, 3))
REG_OUT, REG_TGT = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
W, PW = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.5, 2.0, 3.0])   # class / positive weights

# name -> (chainrule call, torch call, float arrays (differentiated), constant arrays)
CASES = {
    "mse": (lambda o, t, **k: F.mse_loss(o, t, **k),
            lambda o, t, **k: torch.nn.functional.mse_loss(o, t, **k), [REG_OUT, REG_TGT]),
    "l1": (lambda o, t, **k: F.l1_loss(o, t, **k),
           lambda o, t, **k: torch.nn.functional.l1_loss(o, t, **k), [REG_OUT, REG_TGT]),
    "bce": (lambda p, t, **k: F.binary_cross_entropy(p, t, **k),
            lambda p, t, **k: torch.nn.functional.binary_cross_entropy(p, t, **k), [P, T]),
    "bce_weight": (lambda p, t, **k: F.binary_cross_entropy(p, t, weight=cr.tensor(T[0]), **k),
                   lambda p, t, **k: torch.nn.functional.binary_cross_entropy(
                       p, t, weight=torch.tensor(T[0]), **k), [P, T]),
    "bce_logits": (lambda x, t, **k: F.binary_cross_entropy_with_logits(x, t, **k),
                   lambda x, t, **k: torch.nn.functional.binary_cross_entropy_with_logits(
                       x, t, **k), [LOGITS[:5, :3], T]),
    "bce_logits_pos_weight": (
        lambda x, t, **k: F.binary_cross_entropy_with_logits(
            x, t, pos_weight=cr.tensor(PW), **k),
        lambda x, t, **k: torch.nn.functional.binary_cross_entropy_with_logits(
            x, t, pos_weight=torch.tensor(PW), **k), [LOGITS[:5, :3], T]),
    "ce_labels": (lambda x, **k: F.cross_entropy(x, cr.tensor(LABELS), **k),
                  lambda x, **k: torch.nn.functional.cross_entropy(x, torch.tensor(LABELS), **k),
                  [LOGITS]),
    "ce_weight_ignore_smoothing": (
        lambda x, **k: F.cross_entropy(x, cr.tensor(np.where(LABELS == 1, -100, LABELS)),
                                       weight=cr.tensor(W),
                                       label_smoothing=0.2, **k),
        lambda x, **k: torch.nn.functional.cross_entropy(
            x, torch.tensor(np.where(LABELS == 1, -100, LABELS)),
            weight=torch.tensor(W), label_smoothing=0.2, **k), [LOGITS]),
    "ce_probs": (lambda x, t, **k: F.cross_entropy(x, t, label_smoothing=0.1, **k),
                 lambda x, t, **k: torch.nn.functional.cross_entropy(x, t, label_smoothing=0.1,
                                                                     **k), [LOGITS, PROBS]),
    "ce_spatial": (lambda x, **k: F.cross_entropy(x, cr.tensor(LABELS[:4].reshape(2, 2)), **k),
                   lambda x, **k: torch.nn.functional.cross_entropy(
                       x, torch.tensor(LABELS[:4].reshape(2, 2)), **k),
                   [LOGITS.reshape(2, 4, 3)[:, :, :2].copy()]),
    "ce_unbatched": (lambda x, **k: F.cross_entropy(x, cr.tensor(2), **k),
                     lambda x, **k: torch.nn.functional.cross_entropy(x, torch.tensor(2), **k),
                     [LOGITS[0]]),
    "nll_weight": (lambda x, **k: F.nll_loss(x, cr.tensor(LABELS), weight=cr.tensor(
                       W), **k),
                   lambda x, **k: torch.nn.functional.nll_loss(
                       x, torch.tensor(LABELS), weight=torch.tensor(W), **k),
                   [np.log(PROBS)]),
}


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_torch(name, reduction):
    ours_fn, torch_fn, arrays = CASES[name]
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = ours_fn(*ours, reduction=reduction)
    yt = torch_fn(*theirs, reduction=reduction)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(0).standard_normal(y.shape)
    (y * cr.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    for a, b in zip(ours, theirs):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", ["mse", "l1", "bce", "bce_logits_pos_weight", "ce_probs",
                                  "ce_weight_ignore_smoothing", "ce_spatial", "nll_weight"])
def test_loss_gradcheck(name):
    ours_fn, _, arrays = CASES[name]
    arrays = list(arrays)
    if name == "l1":      # away from the kink at output == target
        arrays[0] = arrays[1] + np.where(REG_OUT > 0, 0.5, -0.5)
    assert cr.gradcheck(lambda *xs: ours_fn(*xs), [cr.tensor(a) for a in arrays])


def test_modules_forward_their_options():
    x, t = cr.tensor(LOGITS), cr.tensor(LABELS)
    assert np.isclose(nn.CrossEntropyLoss(reduction="sum")(x, t).item(),
                      F.cross_entropy(x, t, reduction="sum").item())
    assert np.isclose(nn.NLLLoss()(F.log_softmax(x, 1), t).item(), F.cross_entropy(x, t).item())
    p, tt = cr.tensor(P), cr.tensor(T)
    assert np.isclose(nn.BCELoss()(p, tt).item(), F.binary_cross_entropy(p, tt).item())
    s = cr.tensor(LOGITS[:5, :3])
    assert np.isclose(nn.BCEWithLogitsLoss()(s, tt).item(),
                      nn.BCELoss()(F.sigmoid(s), tt).item())
    assert np.isclose(nn.L1Loss(reduction="sum")(p, tt).item(), np.abs(P - T).sum())
    assert nn.MSELoss(reduction="none")(p, tt).shape == (5, 3)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_seed_conventions():
    # half=True: the seeds' ½(t - o)², whose gradient is (o - t)
    o = cr.tensor([0.75, 0.2], dtype=cr.float64, requires_grad=True)
    loss = F.mse_loss(o, cr.tensor([0.25, 0.6], dtype=cr.float64), reduction="sum", half=True)
    assert np.isclose(loss.item(), 0.5 * (0.5 ** 2 + 0.4 ** 2))
    loss.backward()
    np.testing.assert_allclose(o.grad.numpy(), [0.5, -0.4])
    # seed 001's multi-class formula: -1/m Σ_i Σ_j Y_ij ln(softmax(x)_ij), one-hot Y
    onehot = np.eye(4)[LABELS]
    expected = -(onehot * np.log(np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True))).sum() / 6
    assert np.isclose(F.cross_entropy(cr.tensor(LOGITS), cr.tensor(onehot)).item(), expected)
    assert np.isclose(F.cross_entropy(cr.tensor(LOGITS), cr.tensor(LABELS)).item(), expected)
    # seed 001's binary formula on probabilities
    bce = -(T * np.log(P) + (1 - T) * np.log(1 - P)).mean()
    assert np.isclose(F.binary_cross_entropy(cr.tensor(P), cr.tensor(T)).item(), bce)


@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
def test_extreme_logits_stay_finite(dtype):
    x = cr.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype, requires_grad=True)
    for loss in (F.cross_entropy(x, cr.tensor([1, 0])),
                 F.cross_entropy(x, cr.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=dtype)),
                 F.binary_cross_entropy_with_logits(x, cr.tensor([[1.0, 0, 1], [0, 1, 0.5]],
                                                                 dtype=dtype))):
        x.grad = None
        loss.backward()
        assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
    # the values are right, not merely finite
    assert np.isclose(F.cross_entropy(x, cr.tensor([1, 0])).item(), 2e4 + np.log(2) / 2, rtol=1e-6)
    p = cr.tensor([0.0, 1.0, 0.5], dtype=dtype, requires_grad=True)
    loss = F.binary_cross_entropy(p, cr.tensor([1.0, 0.0, 1.0], dtype=dtype), reduction="sum")
    loss.backward()    # p = 0 and 1 with the wrong label: log clamped at -100, like PyTorch
    assert np.isclose(loss.item(), 200 + np.log(2), rtol=1e-5)
    assert np.isfinite(p.grad.numpy()).all()


def test_loss_errors_say_what_is_wrong():
    x = cr.tensor(LOGITS)
    with pytest.raises(IndexError_, match="class label 4 is out of range for 4 classes"):
        F.cross_entropy(x, cr.tensor([0, 1, 4, 0, 1, 2]))
    with pytest.raises(IndexError_, match="class label -1"):
        F.nll_loss(x, cr.tensor([0, 1, -1, 0, 1, 2]))
    with pytest.raises(DTypeError, match="must be integers"):
        F.cross_entropy(x, cr.tensor(LABELS.astype(float)))
    with pytest.raises(ShapeError, match=r"labels of shape \(6,\)"):
        F.cross_entropy(x, cr.tensor([0, 1]))
    with pytest.raises(DomainError, match="target must lie in \\[0, 1\\], found 2.0"):
        F.binary_cross_entropy(cr.tensor([0.5, 0.5]), cr.tensor([1.0, 2.0]))
    with pytest.raises(DomainError, match="input must lie in \\[0, 1\\].*with_logits"):
        F.binary_cross_entropy(cr.tensor([1.5]), cr.tensor([1.0]))
    with pytest.raises(DomainError, match="target"):
        F.binary_cross_entropy_with_logits(cr.tensor([0.3]), cr.tensor([-1.0]))
    with pytest.raises(DTypeError, match="x.float()"):
        F.mse_loss(cr.tensor([1, 2]), cr.tensor([1.0, 2.0]))
    with pytest.raises(DTypeError, match="floating"):
        F.cross_entropy(cr.tensor([[1, 2]]), cr.tensor([0]))
    with pytest.raises(ShapeError, match=r"\(3, 1\).*\(3,\)"):
        F.mse_loss(cr.ones(3, 1), cr.ones(3))
