"""The learner graphs (tests/learner_graphs/): each model a learner writes first, explained
and checked number by number against NumPy in the data model and in the text, Markdown and
LaTeX outputs."""
import numpy as np
import pytest

from learner_graphs import cases, check


def test_the_suite_covers_at_least_fifteen_graphs():
    assert len(cases.CASES) >= 15


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_learner_graph(name):
    c = cases.CASES[name]()
    checked = check.check(c.rep, c.expected)
    assert checked >= len(c.expected)
    text = c.rep.text()
    for phrase in c.phrases:
        assert phrase in text, f"{name}: {phrase!r} not in\n{text}"
    for param, grad in c.grads.items():
        np.testing.assert_allclose(param.grad.numpy(), grad, rtol=1e-5, atol=1e-12)
    assert "✗" not in text.replace("✓ / ✗", ""), text
