"""JAX-style transforms (grad, value_and_grad, jacobian, hessian, hvp, jvp) against closed
forms and against each other."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import GraphError

X = np.array([0.3, -1.2, 0.8])
A = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0]])


def f64(v):
    return cr.tensor(v, dtype=cr.float64)


def cubic(x):
    """f(x) = Σ x³ + x0·x1: gradient 3x² + (x1, x0, 0), Hessian diag(6x) + the x0x1 block."""
    return (x ** 3).sum() + x[0] * x[1]


def cubic_grad(x):
    return 3 * x ** 2 + np.array([x[1], x[0], 0.0])


def cubic_hess(x):
    h = np.diag(6 * x)
    h[0, 1] = h[1, 0] = 1.0
    return h


def vector_fn(x):
    """F(x) = tanh(A x): Jacobian diag(1 - tanh²(Ax)) A."""
    return (f64(A) @ x).tanh()


def vector_jac(x):
    return (1 - np.tanh(A @ x) ** 2)[:, None] * A


def test_grad_matches_closed_form_and_leaves_input_untouched():
    x = f64(X)
    g = cr.grad(cubic)(x)
    np.testing.assert_allclose(g.numpy(), cubic_grad(X), rtol=1e-14)
    assert not g.requires_grad and x.grad is None and not x.requires_grad


def test_grad_accepts_arrays_and_python_floats():
    assert cr.grad(lambda x: x * x)(3.0).item() == 6.0
    np.testing.assert_allclose(cr.grad(cubic)(X).numpy(), cubic_grad(X), rtol=1e-6)


def test_value_and_grad_argnums_tuple_and_has_aux():
    def loss(w, b, x):
        pred = x @ w + b
        return ((pred - 1.0) ** 2).sum(), pred
    w, b, x = f64([0.5, -0.2]), f64(0.1), f64([[1.0, 2.0], [3.0, -1.0]])
    (value, pred), (gw, gb) = cr.value_and_grad(loss, argnums=(0, 1), has_aux=True)(w, b, x)
    p = x.numpy() @ w.numpy() + 0.1
    assert value.item() == pytest.approx(((p - 1) ** 2).sum(), rel=1e-14)
    np.testing.assert_allclose(pred.numpy(), p, rtol=1e-14)
    np.testing.assert_allclose(gw.numpy(), x.numpy().T @ (2 * (p - 1)), rtol=1e-14)
    assert gb.item() == pytest.approx((2 * (p - 1)).sum(), rel=1e-14)
    g, aux = cr.grad(loss, argnums=2, has_aux=True)(w, b, x)
    np.testing.assert_allclose(g.numpy(), np.outer(2 * (p - 1), w.numpy()), rtol=1e-14)


def test_grad_of_an_unused_argument_is_zero():
    g = cr.grad(lambda x, y: (x * 2.0).sum(), argnums=1)(f64([1.0]), f64([5.0, 6.0]))
    assert g.tolist() == [0.0, 0.0]


def test_grad_needs_a_scalar_output():
    with pytest.raises(GraphError, match="scalar"):
        cr.grad(lambda x: x * 2)(f64([1.0, 2.0]))


def test_nested_grad_gives_higher_derivatives():
    f = lambda x: x.sin() * x          # noqa: E731
    d1, d2, d3 = cr.grad(f), cr.grad(cr.grad(f)), cr.grad(cr.grad(cr.grad(f)))
    x, v = f64(0.7), 0.7
    assert d1(x).item() == pytest.approx(np.cos(v) * v + np.sin(v), rel=1e-14)
    assert d2(x).item() == pytest.approx(-np.sin(v) * v + 2 * np.cos(v), rel=1e-14)
    assert d3(x).item() == pytest.approx(-np.cos(v) * v - 3 * np.sin(v), rel=1e-14)


def test_jacobian_matches_closed_form_and_finite_differences():
    jac = cr.jacobian(vector_fn)(f64(X))
    assert jac.shape == (2, 3)
    np.testing.assert_allclose(jac.numpy(), vector_jac(X), rtol=1e-13)
    assert cr.gradcheck(vector_fn, [f64(X)])


def test_jacobian_shapes_for_matrix_inputs_and_argnums():
    m = f64(np.arange(6.0).reshape(2, 3))
    j = cr.jacobian(lambda m: m * m)(m)
    assert j.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(j.numpy().reshape(6, 6), np.diag(2 * np.arange(6.0)))
    ja, jb = cr.jacobian(lambda a, b: a @ b, argnums=(0, 1))(f64(A), f64(X))
    np.testing.assert_allclose(ja.numpy(), np.einsum("ij,k->ijk", np.eye(2), X))
    np.testing.assert_allclose(jb.numpy(), A)


def test_hessian_matches_closed_form_and_jacobian_of_grad():
    h = cr.hessian(cubic)(f64(X))
    np.testing.assert_allclose(h.numpy(), cubic_hess(X), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(cr.jacobian(cr.grad(cubic))(f64(X)).numpy(), h.numpy())
    np.testing.assert_allclose(h.numpy(), h.numpy().T)


def test_hvp_equals_hessian_times_vector():
    v = np.array([1.0, -2.0, 0.5])
    value, hv = cr.hvp(cubic, f64(X), f64(v))
    assert value.item() == pytest.approx((X ** 3).sum() + X[0] * X[1], rel=1e-14)
    np.testing.assert_allclose(hv.numpy(), cubic_hess(X) @ v, rtol=1e-13)
    _, hv_list = cr.hvp(cubic, f64(X), v.tolist())
    np.testing.assert_allclose(hv_list.numpy(), cubic_hess(X) @ v, rtol=1e-14)


def test_jvp_equals_jacobian_times_tangent():
    v = np.array([0.1, 0.2, -0.3])
    value, jv = cr.jvp(vector_fn, f64(X), f64(v))
    np.testing.assert_allclose(value.numpy(), np.tanh(A @ X), rtol=1e-14)
    np.testing.assert_allclose(jv.numpy(), vector_jac(X) @ v, rtol=1e-13)
    # several primals; tangents as Python lists keep the primals' float64 precision
    _, jv2 = cr.jvp(lambda a, b: (a * b).sum(), (f64(X), f64(v)), (v.tolist(), X.tolist()))
    assert jv2.item() == pytest.approx((v * v + X * X).sum(), rel=1e-14)


def test_jvp_of_identity_and_of_a_constant_function():
    v = f64([1.0, 2.0])
    assert cr.jvp(lambda x: x, f64([3.0, 4.0]), v)[1].tolist() == [1.0, 2.0]
    assert cr.jvp(lambda x: f64([7.0]), f64([3.0, 4.0]), v)[1].tolist() == [0.0]


def test_transforms_compose_hessian_of_a_grad_inside_grad():
    """grad(x -> hvp(f, x, v)·1) is a third-derivative contraction: Σ_i v_i ∂³f/∂x_i∂x_j."""
    v = np.array([1.0, 0.0, 2.0])
    third = cr.grad(lambda x: cr.hvp(cubic, x, f64(v))[1].sum())(f64(X))
    np.testing.assert_allclose(third.numpy(), 6 * v)   # ∂³(Σx³)/∂x_i³ = 6 on the diagonal


def test_float32_transforms_stay_float32():
    g = cr.grad(lambda x: (x * x).sum())(cr.tensor([1.0, 2.0]))
    assert g.dtype == cr.float32
    _, jv = cr.jvp(lambda x: x * 3.0, cr.tensor([1.0]), [0.5])
    assert jv.dtype == cr.float32 and jv.item() == 1.5


def test_jvp_rejects_mismatched_tangents():
    with pytest.raises(GraphError, match="tangent of shape"):
        cr.jvp(lambda x: x * 2, f64([1.0, 2.0]), [1.0])
    with pytest.raises(GraphError, match="2 primals but 1 tangents"):
        cr.jvp(lambda a, b: a * b, (f64(1.0), f64(2.0)), (1.0,))
