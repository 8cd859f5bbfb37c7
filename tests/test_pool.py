"""The image pool of fakes (`keras_instagan.pool.FakePool`): fill, swap with p = 0.5, pass
inactive samples through."""

import numpy as np
from utils import max_diff, numpy

from keras_instagan.pool import FakePool


def test_pool_fills_then_swaps():
    pool = FakePool(pool_size=2, seed=0)
    pool.build((None, 1, 1, 1))

    def query(x, active=1.0):
        return float(
            numpy(pool(np.full((1, 1, 1, 1), x, "float32"), np.full((1,), active, "float32"))).item()
        )

    assert query(1) == 1.0
    assert query(2) == 2.0
    assert int(numpy(pool.stored)) == 2
    returned = [query(10 + k) for k in range(200)]
    swapped = [r for k, r in enumerate(returned) if r != 10 + k]
    assert 60 < len(swapped) < 140  # p = 0.5
    assert all(r in (1, 2) or 10 <= r < 210 for r in swapped)
    before = numpy(pool.buffer).copy()
    assert query(-5, active=0.0) == -5  # inactive: passes through
    assert np.array_equal(numpy(pool.buffer), before) and int(numpy(pool.stored)) == 2


def test_pool_size_zero_is_identity():
    pool = FakePool(pool_size=0)
    fakes = np.random.default_rng(0).standard_normal((3, 4, 4, 5)).astype("float32")
    assert max_diff(pool(fakes, np.ones((3,), "float32")), fakes) == 0.0
