"""Shared test settings: hypothesis is deterministic and has no deadline (a noisy 2-core
machine must never fail a test for being slow)."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same random state, the default dtype and the CPU."""
    import chainrule as cr
    cr.manual_seed(0)
    np.random.seed(0)
    cr.set_default_dtype(cr.float32)
    cr.set_default_device(None)
    yield
    cr.set_default_dtype(cr.float32)
    cr.set_default_device(None)
