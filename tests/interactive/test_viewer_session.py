"""ViewerSession without HTTP, on a real (tiny, 3-iteration) slice-wise interactive run.

The run thresholds at 1e-4 (see ``_viewer_helpers``): whatever the network learnt, every voxel it recomputes is
foreground, so a click on slice z turns exactly slice z on — that is what these tests check by hand.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clinseg.data.dataset import load_dataset
from clinseg.errors import ClinsegError, DatasetError
from clinseg.interactive.network import InteractiveNetwork
from clinseg.interactive.viewer import ViewerSession, case_id_of
from clinseg.interactive.viewer.display import Window
from clinseg.io import read_geometry, read_image, write_image
from tests.interactive._viewer_helpers import CORONAL, FLIP_X, GEOM, shared_interactive_run, world, write_restored

SLICE = GEOM.shape[1] * GEOM.shape[2]  # voxels in one axial slice


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[InteractiveNetwork, Path, Path]:
    run, image = shared_interactive_run(tmp_path_factory)
    return InteractiveNetwork.from_run(run, device="cpu"), run, image


@pytest.fixture
def session(trained: tuple[InteractiveNetwork, Path, Path]) -> ViewerSession:
    network, run, image = trained
    return ViewerSession(network, image, run_dir=run)


def _on_slices(mask: np.ndarray) -> list[int]:
    return [int(z) for z in np.flatnonzero(mask.any(axis=(1, 2)))]


def test_case_id_comes_from_the_file_name() -> None:
    assert case_id_of("/x/scan_0000.nii.gz") == "scan"
    assert case_id_of("ct.nrrd") == "ct"


def test_a_click_recomputes_only_its_slice_and_undo_restores(session: ViewerSession) -> None:
    assert session.summary()["voxels"] == 0 and session.touched == ()
    session.click(3, 7, 7, foreground=True)
    assert _on_slices(session.mask()) == [3] and session.mask().sum() == SLICE
    assert session.touched == ("A",)
    after_one = session.summary()["mask_hash"]
    session.click(4, 1, 2, foreground=False)
    assert _on_slices(session.mask()) == [3, 4]
    assert session.clicks() == ([(3, 7, 7)], [(4, 1, 2)])
    assert session.undo()
    assert _on_slices(session.mask()) == [3] and session.clicks() == ([(3, 7, 7)], [])
    assert session.summary()["mask_hash"] == after_one
    assert session.undo() and session.mask().sum() == 0 and session.touched == ()
    assert not session.undo()


def test_brush_paints_a_disc_in_one_slice_and_survives_clicks(session: ViewerSession) -> None:
    session.select("B")
    session.brush(2, [(8, 8)], radius=2, erase=False)
    mask = session.mask()
    assert _on_slices(mask) == [2] and mask.sum() == 13  # disc of radius 2: 1 + 4 + 4 + 4 voxels
    assert mask[2, 8, 6] and mask[2, 10, 8] and not mask[2, 10, 10]
    assert session.touched == ("B",) and session.mask("A").sum() == 0
    session.click(2, 1, 1, foreground=True)  # the network fills slice 2
    session.brush(2, [(8, 8)], radius=1, erase=True)  # erase a 5-voxel disc
    session.click(2, 2, 2, foreground=True)  # recomputes slice 2: the erased voxels stay erased
    assert session.mask().sum() == SLICE - 5 and not session.mask()[2, 8, 9]
    assert session.undo() and session.undo()  # the click, then the erasing stroke
    assert session.mask().sum() == SLICE
    session.clear()
    assert session.mask().sum() == 0 and session.touched == () and session.clicks() == ([], [])


def test_slice_png_changes_with_the_mask(session: ViewerSession) -> None:
    before = session.slice_png(0, 3)
    assert before.startswith(b"\x89PNG")
    session.click(3, 7, 7, foreground=True)
    assert session.slice_png(0, 3) != before
    assert session.slice_png(1, 7).startswith(b"\x89PNG") and session.slice_png(2, 0).startswith(b"\x89PNG")


def test_bad_input_is_a_clear_error(session: ViewerSession) -> None:
    with pytest.raises(ClinsegError, match="outside the image grid"):
        session.click(6, 0, 0, foreground=True)
    with pytest.raises(ClinsegError, match="unknown structure 'C'"):
        session.select("C")
    with pytest.raises(ClinsegError, match="nothing to save"):
        session.save_corrections()


def test_save_prediction_writes_the_mask_with_the_input_geometry(session: ViewerSession, tmp_path: Path) -> None:
    image_bytes = session.image_path.read_bytes()
    session.click(1, 7, 7, foreground=True)
    path = session.save_prediction(tmp_path / "pred.nii.gz")
    assert read_geometry(path).mismatch(read_geometry(session.image_path)) == []
    np.testing.assert_array_equal(read_image(path).array, session.mask())
    default = session.save_prediction()
    assert default == session.run_dir / "interact" / "scan" / "A.nii.gz" and default.is_file()
    assert session.image_path.read_bytes() == image_bytes  # the input is never modified


def test_save_corrections_writes_touched_structures_and_updates_the_dataset(
        trained: tuple[InteractiveNetwork, Path, Path], tmp_path: Path) -> None:
    network, run, image = trained
    original = read_image(image).array
    first = ViewerSession(network, image, run_dir=run)
    first.click(2, 7, 7, foreground=True)
    dataset = tmp_path / "corrected"
    saved = first.save_corrections(dataset)
    assert saved.case_id == "scan" and not saved.renamed
    assert dataset / "structuresTr" / "scan" / "A.nii.gz" in saved.files and saved.files[-1].name == "dataset.json"
    assert not (dataset / "structuresTr" / "scan" / "B.nii.gz").exists()  # untouched: not delineated
    np.testing.assert_array_equal(read_image(dataset / "imagesTr" / "scan_0000.nii.gz").array, original)
    np.testing.assert_array_equal(read_image(dataset / "structuresTr" / "scan" / "A.nii.gz").array, first.mask())
    ds = load_dataset(dataset)
    assert ds.spec.channels == ("CT",) and ds.spec.structures == ("A", "B")
    assert ds.spec.label_mode == "multilabel" and ds.problems == ()
    assert ds.case("scan").annotated == {"A"}

    second_image = tmp_path / "other_0000.nii.gz"
    write_image(original[::-1].copy(), GEOM, second_image)
    second = ViewerSession(network, second_image, run_dir=run)
    second.select("B")
    second.click(0, 3, 3, foreground=False)  # a background click alone also touches B (the run fills slice 0)
    second.save_corrections(dataset)
    ds = load_dataset(dataset)
    assert [c.case_id for c in ds.train] == ["other", "scan"]
    assert ds.case("other").annotated == {"B"} and ds.case("scan").annotated == {"A"}


def test_save_corrections_keeps_existing_labels_and_refuses_other_channels(
        session: ViewerSession, tmp_path: Path) -> None:
    session.click(2, 7, 7, foreground=True)
    dataset = tmp_path / "existing"
    dataset.mkdir()
    spec = {"name": "Mine", "channel_names": {"0": "CT"}, "labels": {"Z": 1, "B": 2}, "label_mode": "multilabel",
            "file_ending": ".nii.gz", "cases": {"old": {"weak_labels": {"tumour": True}}}}
    (dataset / "dataset.json").write_text(json.dumps(spec))
    assert session.save_corrections(dataset, case_id="mine_1").case_id == "mine_1"
    saved = json.loads((dataset / "dataset.json").read_text())
    assert saved["labels"] == {"Z": 1, "B": 2, "A": 3} and saved["name"] == "Mine" and saved["cases"] == spec["cases"]
    assert (dataset / "structuresTr" / "mine_1" / "A.nii.gz").is_file()

    other = tmp_path / "mr"
    other.mkdir()
    (other / "dataset.json").write_text(json.dumps({**spec, "channel_names": {"0": "T1", "1": "T2"}}))
    before = hashlib.sha1((other / "dataset.json").read_bytes()).hexdigest()
    with pytest.raises(DatasetError, match="channels"):
        session.save_corrections(other)
    assert hashlib.sha1((other / "dataset.json").read_bytes()).hexdigest() == before
    assert not (other / "imagesTr").exists()


def test_the_case_id_and_the_save_places_are_fixed_at_start(trained: tuple[InteractiveNetwork, Path, Path],
                                                             tmp_path: Path) -> None:
    network, run, image = trained
    for bad in ("../x", "/tmp/x", ".hidden", "a\\b"):
        with pytest.raises(DatasetError, match="--case: case id"):
            ViewerSession(network, image, case_id=bad, run_dir=run)
    session = ViewerSession(network, image, case_id="p1", run_dir=run, prediction_dir=tmp_path / "out")
    session.click(1, 7, 7, foreground=True)
    assert session.save_prediction() == tmp_path / "out" / "p1" / "A.nii.gz"
    assert session.summary()["prediction_path"] == str(tmp_path / "out" / "p1" / "A.nii.gz")


def test_corrections_of_another_image_get_a_new_case_id(trained: tuple[InteractiveNetwork, Path, Path],
                                                        tmp_path: Path) -> None:
    network, run, image = trained
    dataset = tmp_path / "ds"
    first = ViewerSession(network, image, run_dir=run)
    first.click(2, 7, 7, foreground=True)
    assert first.save_corrections(dataset).case_id == "scan"
    first.click(3, 7, 7, foreground=True)
    assert first.save_corrections(dataset).case_id == "scan"  # same image again: updates its own case
    np.testing.assert_array_equal(read_image(dataset / "structuresTr" / "scan" / "A.nii.gz").array, first.mask())
    kept = {p: p.read_bytes() for p in (dataset / "imagesTr" / "scan_0000.nii.gz",
                                        dataset / "structuresTr" / "scan" / "A.nii.gz")}

    other_image = tmp_path / "elsewhere" / "scan_0000.nii.gz"  # another patient, the same file name
    write_image(read_image(image).array[::-1].copy(), GEOM, other_image)
    second = ViewerSession(network, other_image, run_dir=run)
    second.click(0, 1, 1, foreground=True)
    saved = second.save_corrections(dataset)
    assert saved.case_id == "scan_2" and saved.requested == "scan" and saved.renamed
    assert {p: p.read_bytes() for p in kept} == kept  # the first patient's image and mask are untouched
    np.testing.assert_array_equal(read_image(dataset / "imagesTr" / "scan_2_0000.nii.gz").array,
                                  read_image(other_image).array)
    assert second.save_corrections(dataset).case_id == "scan_2"
    assert [c.case_id for c in load_dataset(dataset).train] == ["scan", "scan_2"]


# -- issue 22: orientation, window, overlays, empty corrections ------------------------------------------------
def _png_grey(png: bytes, row: int, col: int, factor: int) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(png)).getpixel((col * factor + factor // 2, row * factor + factor // 2))[:3]


def test_a_flipped_image_is_shown_and_clicked_like_the_original(trained: tuple[InteractiveNetwork, Path, Path],
                                                                tmp_path: Path) -> None:
    network, run, image = trained
    flipped_path = write_restored(image, tmp_path / "flipped_0000.nii.gz", *FLIP_X)
    plain = ViewerSession(network, image, run_dir=run)
    flipped = ViewerSession(network, flipped_path, run_dir=run)
    assert flipped.summary()["display"]["stored_toward"] == "RPS"
    assert plain.summary()["display"]["stored_toward"] == "LPS"
    assert flipped.summary()["display"]["shape"] == plain.summary()["display"]["shape"] == [6, 16, 16]
    for axis, index in [(0, 0), (0, 3), (1, 7), (2, 2), (2, 12)]:
        assert flipped.slice_png(axis, index) == plain.slice_png(axis, index), (axis, index)

    clicked = [s.click_view(0, 3, 6, 4, foreground=True) for s in (plain, flipped)]
    assert clicked == [(3, 6, 4), (3, 6, 11)]  # x flipped: column 4 from the patient's right is stored x 11
    np.testing.assert_allclose(_world(flipped, clicked[1]), _world(plain, clicked[0]))
    np.testing.assert_array_equal(flipped.mask(), plain.mask()[:, :, ::-1])
    for s in (plain, flipped):
        s.select("B")
        s.brush_view(1, 8, [(2.0, 1.0), (2.0, 3.0)], radius=1.0, erase=False)  # coronal: row 2 is z = 5 - 2
    b = plain.mask()  # discs of radius 1 along x 1..3 at z 3: x 0..4 at z 3, x 1..3 at z 2 and 4, all at y 8
    assert b.sum() == 11 and b[3, 8, 0:5].all() and b[2, 8, 1:4].all() and b[4, 8, 1:4].all()
    np.testing.assert_array_equal(flipped.mask(), plain.mask()[:, :, ::-1])
    for axis, index in [(0, 3), (1, 8), (2, 4)]:
        assert flipped.slice_png(axis, index) == plain.slice_png(axis, index), (axis, index)


def test_a_coronal_acquisition_is_shown_upright(trained: tuple[InteractiveNetwork, Path, Path],
                                                tmp_path: Path) -> None:
    network, run, image = trained
    coronal = ViewerSession(network, write_restored(image, tmp_path / "cor_0000.nii.gz", *CORONAL), run_dir=run)
    plain = ViewerSession(network, image, run_dir=run)
    assert coronal.shape == (16, 6, 16) and coronal.summary()["display"]["shape"] == [6, 16, 16]
    assert coronal.summary()["display"]["spacing"] == [2.0, 1.0, 1.0]
    for axis, index in [(0, 2), (1, 5), (2, 9)]:
        assert coronal.slice_png(axis, index) == plain.slice_png(axis, index), (axis, index)
    point = coronal.click_view(0, 2, 5, 9, foreground=True)  # axial slice 2 (z), row 5 (y), column 9 (x)
    assert point == (5, 3, 9)  # stored (y, 5 - z, x)
    np.testing.assert_allclose(_world(coronal, point), _world(plain, (2, 5, 9)))
    coronal.brush_view(0, 2, [(1.0, 1.0)], radius=1.0, erase=False)
    assert coronal.mask()[1, 3, 1] and coronal.mask()[0, 3, 1] and coronal.mask()[1, 3, 0]


def test_the_image_is_shown_in_its_own_units_through_the_window(trained: tuple[InteractiveNetwork, Path, Path],
                                                                 tmp_path: Path) -> None:
    network, run, _ = trained
    ct = np.full(GEOM.shape, -1000.0, np.float32)  # air, and a block of soft tissue at 40 HU
    ct[:, 4:12, 4:12] = 40.0
    path = tmp_path / "ct_0000.nii.gz"
    write_image(ct, GEOM, path)
    session = ViewerSession(network, path, run_dir=run)
    display = session.summary()["display"]
    assert display["ct_like"] and display["window"] == {"width": 400, "level": 40}
    assert list(display["presets"]) == ["soft tissue", "bone", "lung", "brain"]
    assert session.screen.grey(0, 0).dtype == np.uint8
    png = session.slice_png(0, 0)  # soft tissue: -1000 HU black, 40 HU (40 + 160) / 400 * 255 = 127
    assert _png_grey(png, 0, 0, 8) == (0, 0, 0) and _png_grey(png, 8, 8, 8) == (127, 127, 127)
    bone = session.slice_png(0, 0, Window(1800, 400))  # (40 + 500) / 1800 * 255 = 76.5
    assert _png_grey(bone, 8, 8, 8) == (76, 76, 76)
    mr = ViewerSession(network, trained[2], run_dir=run).summary()["display"]
    assert not mr["ct_like"] and mr["presets"] == {} and 0 < mr["window"]["width"] < 2


def test_every_structure_is_drawn_the_active_one_on_top(session: ViewerSession) -> None:
    session.brush(3, [(8, 8)], radius=2, erase=False)  # A: a disc of 13 voxels around (8, 8)
    session.select("B")
    session.brush(3, [(2, 2)], radius=1, erase=False)  # B: 5 voxels around (2, 2)
    png = session.slice_png(0, 3, opacity=1.0)
    grey = int(session.screen.grey(0, 3)[8, 8])
    half_blue = tuple(int(np.rint(0.5 * grey + 0.5 * c)) for c in (0, 160, 255))
    assert _png_grey(png, 8, 8, 8) == half_blue  # inside A, not active: half the opacity, in A's colour
    assert _png_grey(png, 6, 8, 8) == (0, 160, 255)  # A's contour: opaque
    assert _png_grey(png, 2, 2, 8) == (255, 150, 0)  # inside B, the active one, at full opacity
    session.select("A")
    assert _png_grey(session.slice_png(0, 3, opacity=1.0), 8, 8, 8) == (0, 160, 255)  # now A is on top
    assert session.summary()["display"]["colours"] == {"A": "#00a0ff", "B": "#ff9600"}


def test_an_empty_correction_is_refused(session: ViewerSession, tmp_path: Path) -> None:
    with pytest.raises(ClinsegError, match="nothing to save: no structure has a click or a brush stroke"):
        session.save_corrections(tmp_path / "ds")
    session.brush(3, [(8, 8)], radius=2, erase=False)
    session.brush(3, [(8, 8)], radius=2, erase=True)  # touched, and empty again
    assert session.touched == ("A",) and session.mask().sum() == 0
    with pytest.raises(ClinsegError, match="nothing to save: the touched structure A is empty"):
        session.save_corrections(tmp_path / "ds")
    session.select("B")
    session.brush(3, [(8, 8)], radius=2, erase=True)
    with pytest.raises(ClinsegError, match="the touched structures A, B are empty"):
        session.save_corrections(tmp_path / "ds")
    assert not (tmp_path / "ds").exists()  # nothing written
    session.brush(2, [(4, 4)], radius=1, erase=False)  # B is not empty any more: both are saved
    saved = session.save_corrections(tmp_path / "ds")
    assert read_image(tmp_path / "ds" / "structuresTr" / "scan" / "A.nii.gz").array.sum() == 0  # delineated absent
    assert read_image(tmp_path / "ds" / "structuresTr" / "scan" / "B.nii.gz").array.sum() == 5
    assert saved.case_id == "scan"


def _world(session: ViewerSession, point: tuple[int, int, int]) -> np.ndarray:
    return world(session.geometry, point)
