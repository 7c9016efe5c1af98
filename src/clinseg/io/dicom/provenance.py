"""Who produced a DICOM export: clinseg, its version, and the run (model) whose prediction it holds.

Planning systems list structure sets and segmentations by series description and manufacturer, so both name
clinseg and the run: ``Manufacturer`` ``clinseg``, ``ManufacturerModelName`` ``clinseg <network>``,
``SoftwareVersions`` ``clinseg <version>``, ``SeriesDescription`` ``clinseg <run> (<network>)`` (DICOM LO
values: at most 64 characters, longer ones are cut).
"""

from __future__ import annotations

from dataclasses import dataclass

_LO = 64  # DICOM "long string" limit


def _lo(text: str) -> str:
    return " ".join(text.split())[:_LO]


@dataclass(frozen=True)
class Provenance:
    """The producing model of an export.

    Parameters
    ----------
    run : the run's name (its folder name), '' when unknown.
    model : the network's registry name (``unet3d``, ``dynunet`` …), '' when unknown.
    """

    run: str = ""
    model: str = ""

    @property
    def manufacturer(self) -> str:
        return "clinseg"

    @property
    def model_name(self) -> str:
        return _lo(f"clinseg {self.model}")

    @property
    def software_versions(self) -> str:
        from clinseg import __version__

        return _lo(f"clinseg {__version__}")

    @property
    def version(self) -> str:
        from clinseg import __version__

        return str(__version__)

    def series_description(self) -> str:
        """``clinseg <run> (<network>)``, or ``clinseg segmentation`` when neither is known."""
        what = self.run + (f" ({self.model})" if self.model else "") if self.run else self.model
        return _lo(f"clinseg {what}" if what else "clinseg segmentation")
