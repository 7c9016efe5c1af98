"""Click rounds and click maps per slice or per volume, and the interactive patch source."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.data.samplers import PatchBatch
from clinseg.errors import ConfigError
from clinseg.interactive.guidance import (
    ClickSettings,
    Guidance,
    first_round,
    next_round,
    slice_axis_of,
)
from clinseg.interactive.network import simulate_session
from clinseg.interactive.training import ClickSource


def _bar(shape=(3, 12, 12)) -> np.ndarray:
    target = np.zeros(shape, bool)
    target[:, 3:8, 2:9] = True  # a 5 x 7 rectangle on every slice, centre (5, 5)
    return target


def test_slice_axis_of_patch():
    assert slice_axis_of([1, 96, 96]) == 0
    assert slice_axis_of([64, 1, 64]) == 1
    assert slice_axis_of([32, 32, 32]) is None


def test_first_round_clicks_each_slice_at_its_innermost_point():
    target = _bar()
    target[2] = False  # the last slice holds no object: no click there
    guidance = first_round(target, slice_axis=0)
    assert guidance.fg == [(0, 5, 5), (1, 5, 5)]
    assert guidance.bg == []


def test_first_round_in_3d_is_one_click():
    target = np.zeros((9, 9, 9), bool)
    target[2:7, 2:7, 2:7] = True
    assert first_round(target, slice_axis=None).fg == [(4, 4, 4)]


def test_slice_maps_are_independent_2d_maps():
    guidance = Guidance(fg=[(1, 5, 5)], bg=[(2, 0, 0)])
    maps = guidance.maps((3, 12, 12), sigma=1.0, slice_axis=0)
    assert maps.shape == (2, 3, 12, 12)
    assert maps[0, 1, 5, 5] == 1.0 and maps[0, 0].max() == 0 and maps[0, 2].max() == 0  # no bleed across slices
    assert maps[1, 2, 0, 0] == 1.0 and maps[1, :2].max() == 0
    volume = guidance.maps((3, 12, 12), sigma=1.0, slice_axis=None)
    assert volume[0, 0, 5, 5] > 0  # a 3-D map spreads to the neighbouring slices


def test_next_round_clicks_largest_error_per_slice():
    target = _bar()
    prediction = target.copy()
    prediction[0, 3:8, 2:5] = False          # slice 0: a false negative strip (5 x 3)
    prediction[1, 9:12, 9:12] = True         # slice 1: a false positive block (3 x 3)
    guidance = Guidance()
    assert next_round(guidance, target, prediction, slice_axis=0) == 2
    assert guidance.fg == [(0, 5, 3)]
    assert guidance.bg == [(1, 10, 10)]
    assert next_round(Guidance(), target, target, slice_axis=0) == 0  # nothing left to correct


def test_simulate_session_stops_correcting_when_right():
    target = _bar()
    calls = []

    def segment(guidance: Guidance) -> np.ndarray:
        calls.append(guidance.count())
        return target if guidance.count() > 3 else np.zeros_like(target)  # right once every slice is clicked twice

    rounds = simulate_session(segment, target, clicks=4, slice_axis=0)
    assert [g.count() for _, g in rounds] == [3, 6, 6, 6]
    assert calls == [3, 6]  # no network run once nothing is left to correct
    assert rounds[-1][0] is target


class _Fixed:
    """A base source returning one fixed batch (the object in the left half of each patch)."""

    def __init__(self, patch=(1, 12, 12)) -> None:
        self.rng = np.random.default_rng(0)
        target = np.zeros((2, 2, *patch), np.uint8)
        target[:, 0, :, 3:8, 2:6] = 1   # structure 0
        target[:, 1, :, 3:8, 7:11] = 1  # structure 1
        self.target = target

    def batch(self, batch_size: int) -> PatchBatch:
        image = np.zeros((batch_size, 1, *self.target.shape[2:]), np.float32)
        return PatchBatch(image, self.target[:batch_size], np.array([[True, False], [True, True]])[:batch_size])


def test_click_source_batches_hold_two_click_channels_and_one_target():
    source = ClickSource(_Fixed(), ClickSettings(sigma=1.0, background_rate=0.0, max_interactions=1), slice_axis=0)
    batch = source.batch(2)
    assert batch.image.shape == (2, 3, 1, 12, 12)
    assert batch.target.shape == (2, 1, 1, 12, 12) and batch.annotated.all()
    assert batch.target[0].sum() == 20  # case 0 delineates structure 0 only: it is always the object
    for i in range(2):
        fg = np.unravel_index(np.argmax(batch.image[i, 1]), batch.image.shape[2:])
        assert batch.target[i, 0][fg] == 1  # the foreground click lies on the chosen object
        assert batch.image[i, 2].max() == 0  # no background click


def test_all_background_switch_gives_background_clicks_only():
    source = ClickSource(_Fixed(), ClickSettings(sigma=1.0, background_rate=1.0, max_interactions=1), slice_axis=0)
    batch = source.batch(2)
    assert batch.target.sum() == 0
    assert batch.image[:, 1].max() == 0  # no foreground map
    original = _Fixed().target
    for i in range(2):
        bg = np.unravel_index(np.argmax(batch.image[i, 2]), batch.image.shape[2:])
        assert original[(i, slice(None), *bg)].any()  # the background click lands on the object to leave out


def test_click_source_adds_corrective_clicks_from_the_network():
    seen = []

    def predict(inputs: np.ndarray) -> np.ndarray:
        seen.append(inputs.shape[0])
        return np.zeros((inputs.shape[0], *inputs.shape[2:]), bool)  # a network that segments nothing

    settings = ClickSettings(sigma=1.0, background_rate=0.0, max_interactions=5)
    source = ClickSource(_Fixed(), settings, slice_axis=0, predict=predict)
    batch = source.batch(2)
    assert batch.image.shape == (2, 3, 1, 12, 12)
    assert seen and all(1 <= n <= 2 for n in seen)  # the network ran in prediction mode between interactions


def test_click_settings_reject_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="unknown option"):
        ClickSettings.from_dict({"sigmaa": 1})
    with pytest.raises(ConfigError, match="background_rate"):
        ClickSettings(background_rate=2.0)
