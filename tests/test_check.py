"""gradcheck's own correctness: inputs in any memory layout are perturbed in place."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import GradcheckError


@pytest.mark.parametrize("make", [
    lambda a: a.T,                                        # a transposed float64 view
    lambda a: np.asfortranarray(a.astype(np.float32)),    # Fortran-ordered float32
    lambda a: a[:, ::2],                                  # a strided slice
], ids=["transposed", "fortran", "strided"])
def test_gradcheck_perturbs_non_contiguous_inputs(make):
    x = make(np.arange(1.0, 13.0).reshape(3, 4))
    assert not x.flags.c_contiguous
    assert cr.gradcheck(lambda t: (t * t).sum(), [x])
    assert cr.gradcheck(lambda t: (t * t).sum(), [cr.tensor(x)])


def test_finite_differences_of_a_transposed_input_are_its_gradient():
    from chainrule import check
    x = np.arange(1.0, 7.0).reshape(2, 3).T
    xs = check._float64_leaves([x])
    num = check._numerical(lambda t: (t * t).sum(), xs, [0], 1e-6)[0]
    np.testing.assert_allclose(num.reshape(x.shape), 2 * x, rtol=1e-6)


def test_gradgradcheck_on_a_transposed_input():
    x = np.arange(1.0, 7.0).reshape(2, 3).T
    assert cr.gradgradcheck(lambda t: (t * t * t).sum(), [x])
    with pytest.raises(GradcheckError):   # a wrong gradient on it is still caught
        cr.gradcheck(lambda t: cr.tensor((t * t).sum().item()) + (t * 0).sum(), [x])
