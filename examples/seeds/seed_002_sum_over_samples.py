"""Seed 002: a loss summed over samples, L = Σₙ Cⁿ, so ∂L/∂w = Σₙ ∂Cⁿ/∂w; and the chain rule's
"case 2", a value reaching the loss along two paths, whose products add.

Naming C1 and C2 (and nothing inside them) makes each sample's gradient one factor of the
derivation: ∂L/∂w1 = ∂L/∂C1 · ∂C1/∂w1 + ∂L/∂C2 · ∂C2/∂w1.
"""
import chainrule as cr


def main():
    f = cr.float64
    w1 = cr.tensor(0.5, dtype=f, requires_grad=True, name="w1")
    w2 = cr.tensor(-0.3, dtype=f, requires_grad=True, name="w2")
    b = cr.tensor(0.1, dtype=f, requires_grad=True, name="b")
    samples = [((1.0, 2.0), 1.0), ((0.5, -1.0), 0.0)]
    losses = []
    for n, ((x1, x2), y) in enumerate(samples, 1):
        a = (w1 * x1 + w2 * x2 + b).sigmoid()
        c = 0.5 * (a - y) ** 2
        c.name = f"C{n}"
        losses.append(c)
    total = losses[0] + losses[1]
    total.name = "L"
    print(cr.explain(total))
    from chainrule.explain.seeds import build
    heading, two_paths = build("seed-002").parts[1]
    print(heading)
    print(two_paths.text())


if __name__ == "__main__":
    main()
