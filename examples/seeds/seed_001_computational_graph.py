"""Seed 001: h(x) = 1/(1 + e^(−wx)) split into h1 … h5, its table of local derivatives, and
dh/dw = 0.25 at x = 1, w = 0.

Nothing is named except w and x, so chainrule names every node h1, h2, … and shows each
primitive's local derivative, with a finite-difference check (✓) on each line. Note the
table's ∂h5/∂h4 = −1/h4² (the seed's table drops the minus sign; its product uses it).
"""
import chainrule as cr


def main():
    w = cr.tensor(0.0, dtype=cr.float64, requires_grad=True, name="w")
    x = cr.tensor(1.0, dtype=cr.float64, name="x")
    h = 1 / (1 + (-(w * x)).exp())        # h1 = wx, h2 = −h1, h3 = exp(h2), h4 = 1 + h3, h5 = 1/h4
    rep = cr.explain(h, verify=True)
    print(rep)
    print(f"dh/dw = {w.grad.item()}")
    # The seed's three losses (regression, binary and multi-class cross-entropy):
    from chainrule.explain.seeds import build
    for heading, part in build("seed-001").parts[1:]:
        print("=" * len(heading), heading, "=" * len(heading), sep="\n")
        print(part.text())


if __name__ == "__main__":
    main()
