"""Round-trip image IO for every supported format, with geometry preserved."""

from pathlib import Path

import numpy as np
import pytest

from clinseg.errors import ImageReadError
from clinseg.io import Geometry, read_geometry, read_image, write_image

OBLIQUE = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("ending", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_values_and_geometry(tmp_path: Path, ending: str) -> None:
    geom = Geometry(spacing=(0.9, 0.8, 2.5), origin=(-10.0, 4.5, 30.0), direction=OBLIQUE, shape=(4, 5, 6))
    array = np.arange(120, dtype=np.int16).reshape(4, 5, 6)
    path = tmp_path / f"img{ending}"
    write_image(array, geom, path)
    img = read_image(path)
    assert np.array_equal(img.array, array)
    assert img.geometry.mismatch(geom) == []
    assert read_geometry(path) == img.geometry
    assert img.geometry.spacing_zyx == pytest.approx((2.5, 0.8, 0.9))  # NIfTI stores float32


def test_float_and_bool_round_trip(tmp_path: Path) -> None:
    geom = Geometry(spacing=(1.0, 1.0, 1.0), shape=(2, 3, 4))
    data = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    write_image(data, geom, tmp_path / "f.nii.gz")
    assert np.allclose(read_image(tmp_path / "f.nii.gz").array, data)
    write_image(data > 0, geom, tmp_path / "m.nii.gz")
    mask = read_image(tmp_path / "m.nii.gz").array
    assert mask.dtype == np.uint8 and mask.sum() == 12


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    geom = Geometry(spacing=(1.0, 1.0, 1.0), shape=(8, 8, 8))
    write_image(np.ones((8, 8, 8), np.float32), geom, tmp_path / "a.nii.gz")
    (tmp_path / "b.nii.gz").write_bytes((tmp_path / "a.nii.gz").read_bytes()[:60])
    with pytest.raises(ImageReadError, match=r"b\.nii\.gz: unreadable or truncated image"):
        read_image(tmp_path / "b.nii.gz")
    with pytest.raises(ImageReadError, match=r"missing\.nii\.gz: file not found"):
        read_image(tmp_path / "missing.nii.gz")


def test_write_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    geom = Geometry(spacing=(1.0, 1.0, 1.0), shape=(2, 2, 2))
    with pytest.raises(ValueError):
        write_image(np.zeros((3, 3, 3)), geom, tmp_path / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []
