"""The ``median`` intensity normalisation of seed 001 (§2.3.2): per channel, divide by the median of the
non-zero voxels and multiply by a constant."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data import normalize_intensity


def test_divides_each_channel_by_its_nonzero_median() -> None:
    image = np.zeros((2, 1, 2, 4), dtype=np.int16)
    image[0, 0, 0] = [0, 10, 20, 40]  # non-zero median 20
    image[1, 0] = [[0, 0, 3, 5], [0, 7, 0, 0]]  # non-zero median 5
    out = normalize_intensity(image, "median")
    assert out.dtype == np.float32 and out.shape == image.shape
    assert out[0, 0, 0] == pytest.approx([0.0, 50.0, 100.0, 200.0])
    assert out[1, 0].ravel() == pytest.approx([0.0, 0.0, 60.0, 100.0, 0.0, 140.0, 0.0, 0.0])
    assert image[0, 0, 0, 3] == 40  # input untouched


def test_constant_and_scale_invariance() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(1.0, 500.0, (1, 3, 4, 5)).astype(np.float32)
    image[0, 0] = 0.0  # background
    out = normalize_intensity(image, "median", median_scale=1.0)
    assert np.median(out[0][out[0] != 0]) == pytest.approx(1.0)
    assert normalize_intensity(3.7 * image, "median") == pytest.approx(normalize_intensity(image, "median"), rel=1e-5)
    assert np.median(normalize_intensity(image, "median")[0][image[0] != 0]) == pytest.approx(100.0)


def test_missing_channel_stays_zero() -> None:
    image = np.zeros((2, 2, 2, 2), dtype=np.float32)
    image[0] = 4.0
    out = normalize_intensity(image, "median")
    assert np.all(out[0] == 100.0)
    assert np.all(out[1] == 0.0) and np.isfinite(out).all()
