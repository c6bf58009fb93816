"""The "check" device (chainrule.devices.check) is the CPU suite's stand-in for a GPU: it proves
the compute core device-generic only if it refuses what CuPy refuses. These tests pin each
refusal, so a check device grown lenient cannot let host-only code through unnoticed."""
import pickle

import numpy as np
import pytest

from chainrule import backend
from chainrule.devices.check import CheckedArray, HostArrayError

xp = backend.kind("check").xp


def test_implicit_host_conversion_is_refused():
    a = xp.ones((2, 3))
    for convert in (np.asarray, np.array, lambda v: np.array([v, v]),
                    lambda v: np.ones(3) + v):
        with pytest.raises(TypeError):
            convert(a)


def test_a_host_array_beside_a_device_array_is_refused():
    a = xp.ones(3)
    for mix in (lambda: a + np.ones(3), lambda: np.add(np.ones(3), a),
                lambda: np.concatenate([a, np.ones(3)]), lambda: a.__setitem__(0, np.ones(())),
                lambda: a[np.array([0, 1])]):
        with pytest.raises(HostArrayError, match="host NumPy array"):
            mix()
    # Python and NumPy scalars are fine, as in CuPy
    assert (a * 2.0 + np.float64(1.0)).sum().item() == 9.0


def test_results_stay_on_the_device_and_reductions_give_0d_arrays():
    a = xp.arange(6.0).reshape(2, 3)
    for result in (a.sum(), np.sum(a), np.exp(a), a.T, a[0], np.maximum(a, 1.0), a.max(),
                   np.einsum("ij->j", a), xp.lib.stride_tricks.as_strided(a, (2, 2), (24, 8))):
        assert type(result) is CheckedArray
    assert a.sum().ndim == 0 and backend.device_of(a).type == "check"
    assert backend.to_host(a).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_numpy_only_keywords_and_ufunc_methods_are_refused():
    a = xp.ones((2, 3))
    for call in (lambda: np.max(a, initial=0.0), lambda: a.sum(where=a > 0),
                 lambda: np.maximum.reduce(a, axis=0), lambda: np.add(a, 1.0, where=a > 0)):
        with pytest.raises(TypeError, match="CuPy"):
            call()
    z = xp.zeros(3)
    np.add.at(z, xp.asarray([0, 0, 2]), 1.0)      # add.at and add.reduce are CuPy's too
    assert z.tolist() == [2.0, 0.0, 1.0] and np.add.reduce(a, axis=0).tolist() == [2.0] * 3
    out = xp.zeros(3)
    np.copyto(out, xp.ones(3), where=xp.asarray([True, False, True]))   # CuPy's copyto has it
    assert out.tolist() == [1.0, 0.0, 1.0]


def test_views_share_memory_roots_and_copies_do_not():
    a = xp.zeros((2, 3))
    assert backend.memory_root(a[0]) is backend.memory_root(a.reshape(6))
    assert backend.memory_root(a.copy()) is not backend.memory_root(a)
    b = pickle.loads(pickle.dumps(a))
    assert type(b) is CheckedArray and b.shape == (2, 3)
