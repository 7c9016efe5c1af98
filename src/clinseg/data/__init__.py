"""Dataset format, case records, loading and validation."""

from clinseg.data.dataset import (
    CaseRecord,
    Dataset,
    DatasetSpec,
    load_dataset,
    read_spec,
)
from clinseg.data.loading import (
    CaseData,
    load_case,
    load_image,
    load_targets,
    normalize_intensity,
)
from clinseg.data.validate import Problem, ValidationReport, validate_dataset

__all__ = [
    "CaseData",
    "CaseRecord",
    "Dataset",
    "DatasetSpec",
    "Problem",
    "ValidationReport",
    "load_case",
    "load_dataset",
    "load_image",
    "load_targets",
    "normalize_intensity",
    "read_spec",
    "validate_dataset",
]
