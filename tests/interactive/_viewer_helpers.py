"""A tiny trained interactive run and its image, shared by the viewer tests (built once per test session), the
same patient stored another way (flipped, permuted axes), and real HTTP requests to a running viewer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest

from clinseg.io import Geometry, write_image

GEOM = Geometry(spacing=(1.0, 1.0, 2.0), origin=(10.0, -5.0, 3.0), shape=(6, 16, 16))
STRUCTURES = ("A", "B")


def _disc(center: tuple[int, int], r: int) -> np.ndarray:
    y, x = np.ogrid[:16, :16]
    return ((y - center[0]) ** 2 + (x - center[1]) ** 2 <= r * r)


def make_interactive_run(root: Path) -> tuple[Path, Path]:
    """Write a 2-case dataset (structures A, B; one channel), train a 3-iteration slice-wise interactive
    unet2d on it, and write one new image to segment. Returns ``(run_dir, image_path)``."""
    from clinseg.training.config import TrainConfig
    from clinseg.training.run import train

    dataset = root / "ds"
    (dataset / "imagesTr").mkdir(parents=True)
    (dataset / "dataset.json").write_text(json.dumps({
        "name": "Tiny", "channel_names": {"0": "CT"}, "labels": {"A": 1, "B": 2},
        "label_mode": "multilabel", "file_ending": ".nii.gz"}))
    rng = np.random.default_rng(0)
    for i in range(2):
        a = np.broadcast_to(_disc((5, 5), 3), GEOM.shape).astype(np.uint8)
        b = np.broadcast_to(_disc((10, 11), 3), GEOM.shape).astype(np.uint8)
        image = (1.0 * a + 0.5 * b + rng.normal(0, 0.05, GEOM.shape)).astype(np.float32)
        write_image(image, GEOM, dataset / "imagesTr" / f"case_{i}_0000.nii.gz")
        write_image(a, GEOM, dataset / "structuresTr" / f"case_{i}" / "A.nii.gz")
        write_image(b, GEOM, dataset / "structuresTr" / f"case_{i}" / "B.nii.gz")
    run = root / "run"
    # A threshold of 1e-4 (a logit of -9.2, far below what an untrained net outputs on intensities ~1): every
    # voxel the network recomputes becomes foreground, whatever 3 iterations learnt, so a test sees exactly
    # which slices a click recomputed (the network's quality is not under test here). Not 0: voxels copied
    # from the previous mask (0) must stay 0.
    cfg = TrainConfig(model="unet2d", model_kwargs={"features": [4, 8]}, patch_size=[1, 16, 16], batch_size=2,
                      iterations=3, val_every=3, interactive={"sigma": 2.0}, normalization="none",
                      val_cases=1, device="cpu", threshold=1e-4)
    train(dataset, run, cfg)
    image_path = root / "new" / "scan_0000.nii.gz"
    write_image((np.broadcast_to(_disc((7, 7), 4), GEOM.shape)
                 + rng.normal(0, 0.05, GEOM.shape)).astype(np.float32), GEOM, image_path)
    return run, image_path


_RUNS: dict[Path, tuple[Path, Path]] = {}


def shared_interactive_run(factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """:func:`make_interactive_run` once per pytest session (the viewer test modules share it; tests only
    read the run, saves go to their own folders or to ``run/interact``)."""
    base = factory.getbasetemp()
    if base not in _RUNS:
        _RUNS[base] = make_interactive_run(factory.mktemp("viewer_run"))
    return _RUNS[base]


def world(geometry: Geometry, point: tuple[float, float, float]) -> np.ndarray:
    """LPS position in mm of voxel ``point = (z, y, x)`` of an image of ``geometry`` (ITK's index-to-point:
    ``origin + direction @ (spacing * (x, y, z))``)."""
    direction = np.asarray(geometry.direction, float).reshape(3, 3)
    return np.asarray(geometry.origin, float) + direction @ (np.asarray(point[::-1], float) * geometry.spacing)


def restored(array: np.ndarray, geometry: Geometry, order: tuple[int, int, int],
             flips: tuple[bool, bool, bool]) -> tuple[np.ndarray, Geometry]:
    """The same patient stored another way: new array axis ``j`` is old array axis ``order[j]``, reversed
    where ``flips[j]``; the geometry (origin, direction, spacing) follows, so every voxel keeps its place in the
    patient. ``restored(a, g, (0, 1, 2), (False, False, True))`` is ``a`` with a -1 on x in the direction."""
    out = np.transpose(array, order)[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    first = [0, 0, 0]
    for j, a in enumerate(order):
        first[a] = array.shape[a] - 1 if flips[j] else 0
    old = np.asarray(geometry.direction, float).reshape(3, 3)
    direction = np.zeros((3, 3))
    spacing = [0.0, 0.0, 0.0]  # (x, y, z)
    for j, a in enumerate(order):
        direction[:, 2 - j] = old[:, 2 - a] * (-1.0 if flips[j] else 1.0)
        spacing[2 - j] = geometry.spacing_zyx[a]
    out = np.ascontiguousarray(out)
    origin = tuple(float(v) for v in world(geometry, tuple(first)))  # type: ignore[arg-type]
    return out, Geometry(tuple(spacing), origin, tuple(float(v) for v in direction.ravel()),  # type: ignore[arg-type]
                         tuple(out.shape))  # type: ignore[arg-type]


def write_restored(image: Path, dest: Path, order: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> Path:
    """Write the image file ``image`` again at ``dest``, stored as :func:`restored` says."""
    from clinseg.io import read_image

    original = read_image(image)
    array, geometry = restored(original.array, original.geometry, order, flips)
    write_image(array, geometry, dest)
    return dest


FLIP_X = ((0, 1, 2), (False, False, True))
#: A coronal acquisition: array axis 0 runs anterior to posterior, axis 1 head to foot, axis 2 right to left.
CORONAL = ((1, 0, 2), (False, True, False))


class Viewer(Protocol):
    """What a request needs of a running viewer (a :class:`~clinseg.interactive.viewer.ViewerServer`)."""

    origin: str
    token: str


@dataclass
class Address:
    """A viewer known by the address a command printed (``http://127.0.0.1:PORT/?token=T``)."""

    origin: str
    token: str

    @classmethod
    def parse(cls, url: str) -> Address:
        origin, token = url.strip().split("/?token=")
        return cls(origin, token)


def request(server: Viewer, method: str, path: str, body: object = None, *, token: str | None = "header",
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One real HTTP request to a running viewer (``http.client``); returns ``(status, headers, body)``.

    ``token``: ``"header"`` sends the session token as ``X-Clinseg-Token``, ``"query"`` as ``?token=``, any
    other string is sent as the header's value, None sends none. ``body``: a dict is sent as JSON with
    ``Content-Type: application/json`` (unless ``headers`` names another), bytes as they are.
    """
    send = {"Content-Type": "application/json"} if body is not None else {}
    if token == "header":
        send["X-Clinseg-Token"] = server.token
    elif token == "query":
        path += ("&" if "?" in path else "?") + f"token={server.token}"
    elif token is not None:
        send["X-Clinseg-Token"] = token
    send.update(headers or {})
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    port = int(server.origin.rsplit(":", 1)[1])
    connection = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=send)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post(server: Viewer, path: str, body: object, **options: object) -> tuple[int, dict]:
    """POST ``body`` (JSON) with the token; returns ``(status, parsed JSON answer)``."""
    status, _, raw = request(server, "POST", path, body, **options)  # type: ignore[arg-type]
    return status, json.loads(raw)


def state(server: Viewer) -> dict:
    """``GET /api/state`` with the token."""
    status, _, raw = request(server, "GET", "/api/state")
    assert status == 200, raw
    return json.loads(raw)
