"""Overlay figures render real PNGs with the structures visible."""

from pathlib import Path

import numpy as np

from clinseg.viz import overlay_figure, save_figure


def test_overlay_png(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(size=(10, 20, 30))
    mask = np.zeros(image.shape, bool)
    mask[3:7, 5:15, 10:20] = True
    fig = overlay_figure(image, {"box": mask}, (3.0, 1.0, 1.0), title="t")
    assert len(fig.axes) == 3
    save_figure(fig, tmp_path / "o.png")
    data = (tmp_path / "o.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
