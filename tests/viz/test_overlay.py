"""Overlay figures: three oriented panels, aspect from spacing, real PNGs written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinseg.viz import (
    OverlayCase,
    mask_centre,
    overlay_figure,
    overlay_grid,
    save_figure,
)


def _volume() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    image = np.random.default_rng(0).normal(size=(10, 20, 30))
    box = np.zeros(image.shape, bool)
    box[3:8, 5:16, 10:21] = True
    dot = np.zeros(image.shape, bool)
    dot[4, 8, 14] = True
    return image, {"box": box, "dot": dot}


def test_overlay_figure_panels_aspect_and_png(tmp_path: Path) -> None:
    image, masks = _volume()
    fig = overlay_figure(image, masks, (3.0, 1.0, 0.5), title="t")
    axes = fig.axes
    assert len(axes) == 3 and [a.get_title() for a in axes] == ["axial", "coronal", "sagittal"]
    # aspect = row spacing / column spacing: axial Y/X, coronal Z/X, sagittal Z/Y
    assert [a.get_aspect() for a in axes] == pytest.approx([2.0, 6.0, 3.0])
    assert axes[0].images[0].get_array().shape == (20, 30)  # axial slice is (Y, X)
    assert len(fig.legends) == 1
    save_figure(fig, tmp_path / "o.png")
    data = (tmp_path / "o.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temporary left behind


def test_slices_pass_through_the_mask_centre() -> None:
    image, masks = _volume()
    assert mask_centre(masks, image.shape) == (5, 10, 15)
    assert mask_centre({}, image.shape) == (5, 10, 15)
    empty = overlay_figure(image, {}, (1.0, 1.0, 1.0))
    assert len(empty.axes) == 3 and not empty.legends
    fig = overlay_figure(image, masks, (1.0, 1.0, 1.0), center_zyx=(0, 0, 0))
    assert np.array_equal(fig.axes[0].images[0].get_array(), image[0])


def test_overlay_grid_rows_and_errors() -> None:
    image, masks = _volume()
    fig = overlay_grid([OverlayCase(image, masks, (1, 1, 1), "a"), OverlayCase(image, {"box": masks["box"]}, (1, 1, 1), "b")])
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="mask 'bad'"):
        overlay_figure(image, {"bad": np.zeros((2, 2, 2), bool)}, (1, 1, 1))
    with pytest.raises(ValueError):
        overlay_grid([])
