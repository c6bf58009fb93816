"""cr.set_num_threads / cr.num_threads reach NumPy's BLAS through threadpoolctl."""
import pytest

import chainrule as cr

threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl is not installed")


def _blas_threads():
    return {lib["num_threads"] for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"}


def test_num_threads_limits_inside_the_block_and_restores():
    before = _blas_threads()
    with cr.num_threads(1):
        assert _blas_threads() == {1}
        y = cr.ones(8, 8) @ cr.ones(8, 8)
    assert y.numpy()[0, 0] == 8.0
    assert _blas_threads() == before


def test_set_num_threads_is_global():
    before = _blas_threads()
    try:
        cr.set_num_threads(1)
        assert _blas_threads() == {1}
    finally:
        threadpoolctl.threadpool_limits(limits=max(before), user_api="blas")


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(cr.errors.ShapeError, match="positive int"):
        cr.set_num_threads(bad)
