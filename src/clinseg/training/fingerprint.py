"""A dataset fingerprint stored in each run folder, so a resumed or evaluated run can tell the data changed."""

from __future__ import annotations

import hashlib
from typing import Any

from clinseg.data.dataset import Dataset


def dataset_fingerprint(dataset: Dataset) -> dict[str, Any]:
    """Name, a hash of ``dataset.json`` and a hash of the (relative path, size) of every case file.

    Sizes rather than contents keep it instant on large datasets while still catching added, removed or
    rewritten files in practice.
    """
    json_hash = hashlib.sha256((dataset.root / "dataset.json").read_bytes()).hexdigest()
    files = hashlib.sha256()
    count = 0
    for record in dataset.cases():
        paths = [*record.images, *record.structure_files.values()]
        if record.label_map is not None:
            paths.append(record.label_map)
        for path in paths:
            size = path.stat().st_size if path.exists() else -1
            files.update(f"{path.relative_to(dataset.root)}:{size}\n".encode())
            count += 1
    return {
        "name": dataset.spec.name,
        "dataset_json_sha256": json_hash,
        "files_sha256": files.hexdigest(),
        "num_files": count,
        "num_train": len(dataset.train),
        "num_test": len(dataset.test),
        "structures": list(dataset.spec.structures),
        "channels": list(dataset.spec.channels),
    }
