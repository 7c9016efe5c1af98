"""Preprocessing: crop to the body, resample to the plan's spacing, normalise, and map predictions back."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.body import body_box, body_mask
from clinseg.data.intensity import ChannelNorm, foreground_statistics, normalise_channel
from clinseg.data.preprocess import Preprocessing, prepare_image, prepare_targets, restore_probabilities
from clinseg.io.image import Geometry
from tests._synthetic import sphere


def _head(shape=(30, 40, 50)) -> np.ndarray:
    image = np.full(shape, -1000.0, np.float32)
    image[5:25, 8:32, 10:40] = 40.0
    return image


def test_body_box_finds_the_non_air_region_with_a_margin() -> None:
    image = _head()
    assert body_box(image, margin=2) == ((3, 27), (6, 34), (8, 42))
    assert body_box(image, margin=0) == ((5, 25), (8, 32), (10, 40))
    noise = image.copy()
    noise[0, 0, 0] = 40.0  # one stray voxel is not body
    assert body_box(noise, margin=0) == ((5, 25), (8, 32), (10, 40))
    assert not body_mask(np.zeros((4, 4, 4))).any()


def test_ct_normalisation_clips_then_z_scores_with_foreground_statistics() -> None:
    samples = np.concatenate([np.full(990, 40.0), np.full(10, 3000.0)])
    norm = foreground_statistics(samples)
    assert norm.scheme == "ct" and norm.clip == pytest.approx((40.0, np.percentile(samples, 99.5)))
    x = normalise_channel(np.array([[[-1000.0, 40.0, 5000.0]]]), norm)
    assert x[0, 0, 0] == x[0, 0, 0] and x[0, 0, 0] == pytest.approx((40.0 - norm.mean) / norm.std)  # clipped up
    assert x[0, 0, 2] == pytest.approx((norm.clip[1] - norm.mean) / norm.std)


def test_mr_normalisation_uses_the_body_voxels_only() -> None:
    image = np.zeros((20, 20, 20), np.float32)
    image[5:15, 5:15, 5:15] = np.linspace(100, 300, 1000).reshape(10, 10, 10)
    out = normalise_channel(image, ChannelNorm("mr"))
    inside = out[5:15, 5:15, 5:15]
    # a whole-volume z-score would put the inside near +1.4: the air is left out of the statistics
    assert abs(float(inside.mean())) < 0.05 and float(inside.std()) == pytest.approx(1.0, rel=0.1)


def test_prepare_crops_resamples_and_keeps_geometry() -> None:
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), origin=(10.0, -5.0, 3.0), shape=(30, 40, 50))
    prep = Preprocessing((2.0, 2.0, 2.0), True, (ChannelNorm("ct", (-1000.0, 1000.0), 0.0, 100.0),))
    prepared = prepare_image(_head()[None], geometry, prep)
    assert prepared.box == ((3, 27), (6, 34), (8, 42))
    assert prepared.image.shape == (1, 12, 14, 17)
    g = prepared.geometry
    assert g.spacing == pytest.approx((34 / 17, 28 / 14, 24 / 12))
    # the first new voxel centre lies half a new voxel inside the box's corner (edge-aligned grids)
    corner = np.array([10.0 + 8 - 0.5, -5.0 + 6 - 0.5, 3.0 + 3 - 0.5])
    assert np.allclose(np.array(g.origin), corner + np.array(g.spacing) / 2)


def test_a_sphere_survives_the_round_trip_within_a_voxel() -> None:
    """Targets resampled to a coarser grid and probabilities mapped back land where they started."""
    shape = (40, 48, 56)
    geometry = Geometry(spacing=(0.8, 0.8, 1.5), shape=shape)
    image = _head(shape)
    ball = sphere(shape, (20, 24, 28), (6, 10, 10))
    prep = Preprocessing((1.6, 1.6, 1.5), True, (ChannelNorm("zscore"),))
    prepared = prepare_image(image[None], geometry, prep)
    small = prepare_targets(ball[None], prepared)
    assert small.shape[1:] == prepared.image.shape[1:]
    volume_mm3 = ball.sum() * 0.8 * 0.8 * 1.5
    assert small.sum() * np.prod(prepared.geometry.spacing) == pytest.approx(volume_mm3, rel=0.1)
    back = restore_probabilities(small.astype(np.float32), prepared)
    assert back.shape == (1, *shape)  # the prediction grid is the input grid
    mask = back[0] >= 0.5
    assert (mask ^ ball.astype(bool)).sum() / ball.sum() < 0.15
    centre = np.argwhere(mask).mean(axis=0)
    assert np.abs(centre - [20, 24, 28]).max() < 1.0
    assert not mask[:, :, :10].any()  # nothing outside the body box
