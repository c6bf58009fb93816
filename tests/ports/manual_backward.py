"""The two-layer network of "Learning PyTorch with examples": first with the backward pass
written by hand on tensors, then with autograd, checking that both give the same gradients.
tests/test_ports.py runs this very text on PyTorch and, with only its import lines changed,
on chainrule."""
import torch


def by_hand(x, y, w1, w2, learning_rate=1e-6, steps=20):
    losses = []
    for t in range(steps):
        h = x.mm(w1)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)

        loss = (y_pred - y).pow(2).sum().item()
        losses.append(loss)

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h_relu = grad_y_pred.mm(w2.t())
        grad_h = grad_h_relu.clone()
        grad_h[h < 0] = 0
        grad_w1 = x.t().mm(grad_h)

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
    return losses, grad_w1, grad_w2


def with_autograd(x, y, w1, w2, learning_rate=1e-6, steps=20):
    w1 = w1.clone().requires_grad_(True)
    w2 = w2.clone().requires_grad_(True)
    losses = []
    for t in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        last = (w1.grad.clone(), w2.grad.clone())
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return losses, last[0], last[1]


def main(arrays=None, steps=20):
    dtype = torch.float
    device = torch.device("cpu")
    if arrays is None:
        N, D_in, H, D_out = 64, 100, 50, 10
        arrays = {"x": torch.randn(N, D_in).numpy(), "y": torch.randn(N, D_out).numpy(),
                  "w1": torch.randn(D_in, H).numpy(), "w2": torch.randn(H, D_out).numpy()}
    x, y, w1, w2 = (torch.tensor(arrays[k], device=device, dtype=dtype)
                    for k in ("x", "y", "w1", "w2"))
    hand = by_hand(x, y, w1.clone(), w2.clone(), steps=steps)
    auto = with_autograd(x, y, w1, w2, steps=steps)
    agree = all(torch.allclose(a, b, rtol=1e-4, atol=1e-3) for a, b in zip(hand[1:], auto[1:]))
    return {"hand": hand[0], "auto": auto[0], "grads_agree": agree,
            "max_grad_gap": max((a - b).abs().max().item() for a, b in zip(hand[1:], auto[1:]))}


if __name__ == "__main__":
    result = main()
    print(f"final loss by hand {result['hand'][-1]:.1f}, autograd {result['auto'][-1]:.1f}; "
          f"gradients agree: {result['grads_agree']}")
