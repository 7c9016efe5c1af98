"""``clinseg predict RUN IN OUT --clicks K``: an interactive run applied with clicks simulated from a reference.

For every case and every structure the reference delineates, a person's session is simulated
(:func:`clinseg.interactive.network.simulate_session`): K clicks per slice for a slice-wise network (seed
002 evaluates with one click per axial slice), K clicks per volume for a 3-D one. Output layout::

    OUT/<case>/<structure>.nii.gz            the result after K rounds (what ``clinseg evaluate`` reads)
    OUT/clicks/<k>/<case>/<structure>.nii.gz the result after round k < K (``clinseg evaluate --clicks K``)
    OUT/clicks.json                          the clicks given, per case and structure, and clicks per round

Structures the reference does not delineate get no clicks and an empty mask (``evaluate`` skips them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clinseg.data.dataset import load_dataset
from clinseg.data.loading import load_targets
from clinseg.errors import DatasetError
from clinseg.inference.predictor import find_cases, prepare_output, write_case
from clinseg.interactive.network import InteractiveNetwork
from clinseg.io.atomic import write_text
from clinseg.progress import track


def default_reference(input_dir: str | Path) -> Path | None:
    """The dataset an ``imagesTs``/``imagesTr`` folder belongs to (its parent holds ``dataset.json``)."""
    parent = Path(input_dir).resolve().parent
    return parent if (parent / "dataset.json").is_file() else None


def predict_with_clicks(network: InteractiveNetwork, input_dir: str | Path, reference: str | Path,
                        out_dir: str | Path, clicks: int,
                        on_case: Callable[[str, float], None] | None = None) -> list[str]:
    """Segment every case of ``input_dir`` with ``clicks`` simulated clicks per slice/volume from the
    reference dataset ``reference`` (cases looked up by id in its test, then training split).
    ``on_case(case, seconds)`` gets each case's segmentation time (all structures and rounds)."""
    dataset = load_dataset(reference)
    cases = find_cases(input_dir, len(network.channels))
    if list(dataset.spec.structures) != list(network.structures):
        raise DatasetError(f"{dataset.root}: structures {list(dataset.spec.structures)} differ from the run's "
                           f"{list(network.structures)}")
    out_dir = prepare_output(out_dir)
    log: dict[str, dict[str, object]] = {}
    for case in track(list(cases), "predicting with clicks"):
        try:
            record = dataset.case(case)
        except (KeyError, DatasetError):
            raise DatasetError(f"{dataset.root}: no reference case {case!r} to simulate clicks from") from None
        image, geometry = network.load_image(cases[case][0])
        target, annotated = load_targets(record, dataset.spec, geometry)
        per_round = np.zeros((clicks, len(network.structures), *image.shape[1:]), np.uint8)
        start = time.perf_counter()
        log[case] = {}
        for n, name in enumerate(network.structures):
            if not annotated[n]:
                log[case][name] = "not delineated: no clicks"
                continue
            rounds = network.simulate(image, target[n] > 0, clicks, geometry.spacing_zyx)
            for k, (mask, _) in enumerate(rounds):
                per_round[k, n] = mask
            guidance = rounds[-1][1]
            log[case][name] = {**guidance.to_dict(),
                               "clicks_after_round": [g.count() for _, g in rounds]}
        if on_case is not None:
            on_case(case, time.perf_counter() - start)
        for k in range(clicks - 1):
            write_case(out_dir / "clicks" / str(k + 1), case, per_round[k], network.structures, geometry)
        write_case(out_dir, case, per_round[-1], network.structures, geometry)
    write_text(out_dir / "clicks.json", json.dumps({"clicks": clicks, "slice_axis": network.slice_axis,
                                                    "cases": log}))
    return list(cases)
