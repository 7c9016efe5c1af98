"""The run's metrics log: one JSON object per line (``metrics.jsonl``), appended as training goes.

On resume, records after the checkpoint's iteration are dropped so the log matches the restored state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinseg.io.atomic import write_text


class MetricsLog:
    """Append-only JSONL log with truncation to an iteration on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """All records (a torn last line from a killed process is skipped)."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_after(self, iteration: int) -> None:
        """Keep only records with ``iteration <= iteration`` (atomic rewrite)."""
        kept = [r for r in self.read() if int(r.get("iteration", 0)) <= iteration]
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
