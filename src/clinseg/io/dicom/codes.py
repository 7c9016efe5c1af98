"""Standard codes for structure names: SNOMED CT concepts for DICOM-SEG segments (and Slicer terminology),
``RTROIInterpretedType`` for RTSTRUCT ROIs.

A structure name is read as clinseg's TG-263 names are written (``Parotid_L``, ``OpticNrv_R``,
``Bone_Mandible``; ``clinseg/data/tg263_names.yaml``) and as they are commonly spelled (``Left Parotid``,
``Brain Stem``, ``Optic Chiasm``): case and separators (space ``_`` ``-`` ``.``) do not matter, a side
(``_L``/``_R``, ``Left``/``Right`` before or after) becomes the laterality modifier (SNOMED CT ``7771000``
Left / ``24028007`` Right). The concept is the DICOM code where DICOM has one
(:data:`pydicom.sr.codedict.codes`, as highdicom uses them), else the one of the TG-263 -> SNOMED CT map of
HL7 mCODE (Cochlea, pharyngeal constrictor muscles); ``docs/dicom.md`` lists them. A name nothing matches
keeps the generic ``Organ`` (SNOMED CT ``91772007``).

Target volumes (names starting ``PTV``, ``CTV``, ``GTV``) are coded as such in both objects; in an
RTSTRUCT, ``External``/``Body``/``Outline`` is ``EXTERNAL``, a planning organ-at-risk volume (``PRV`` in the
name) or an avoidance structure (``Avoid`` …) is ``AVOIDANCE``, TG-263's non-clinical ``z`` structures
(``zPTV_opt``) are ``CONTROL``, everything else ``ORGAN``.

Examples
--------
>>> code = structure_code("Parotid_L")
>>> code.type.value, code.type.meaning, code.modifier.meaning
('45289007', 'Parotid gland', 'Left')
>>> roi_interpreted_type("PTV_70"), roi_interpreted_type("Parotid_L_PRV05"), roi_interpreted_type("Brainstem")
('PTV', 'AVOIDANCE', 'ORGAN')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

#: Concepts not in DICOM's code dictionary, from the TG-263 -> SNOMED CT map of HL7 mCODE (ConceptMap TG263CM).
COCHLEA = Code("80169004", "SCT", "Cochlea")
PHARYNGEAL_CONSTRICTOR = Code("4866005", "SCT", "Constrictor muscle of pharynx")

_SCT = codes.SCT
#: Compact name (lower case, no separators, no side) -> anatomical concept.
_ANATOMY: dict[str, Code] = {
    **dict.fromkeys(("brain", "brainwhole", "wholebrain"), _SCT.Brain),
    **dict.fromkeys(("brainstem", "truncusencephali"), _SCT.BrainStem),
    **dict.fromkeys(("spinalcord", "cord", "medullaspinalis"), _SCT.SpinalCord),
    **dict.fromkeys(("opticchiasm", "chiasm", "chiasma", "chiasmaopticum"), _SCT.OpticChiasm),
    **dict.fromkeys(("opticnrv", "opticnerve", "nopticus"), _SCT.OpticNerve),
    **dict.fromkeys(("eye", "globe", "eyeball", "bulbus"), _SCT.Eye),
    **dict.fromkeys(("lens", "eyelens"), _SCT.Lens),
    **dict.fromkeys(("cochlea", "innerear"), COCHLEA),
    **dict.fromkeys(("pituitary", "pituitarygland", "glndpituitary", "hypophysis"), _SCT.Pituitary),
    **dict.fromkeys(("hippocampus", "hippo"), _SCT.Hippocampus),
    **dict.fromkeys(("lobetemporal", "temporallobe"), _SCT.TemporalLobe),
    **dict.fromkeys(("parotid", "parotidgland", "glndparotid"), _SCT.ParotidGland),
    **dict.fromkeys(("glndsubmand", "submandibular", "submandibulargland", "submand"), _SCT.SubmandibularGland),
    **dict.fromkeys(("glndlacrimal", "lacrimal", "lacrimalgland"), _SCT.LacrimalGland),
    **dict.fromkeys(("glndthyroid", "thyroid", "thyroidgland"), _SCT.Thyroid),
    **dict.fromkeys(("bonemandible", "mandible", "mandibula"), _SCT.Mandible),
    **dict.fromkeys(("cavityoral", "oralcavity"), _SCT.OralCavity),
    **dict.fromkeys(("larynx", "glottis"), _SCT.Larynx),
    **dict.fromkeys(("esophagus", "oesophagus"), _SCT.Esophagus),
    **dict.fromkeys(("lips", "lip"), _SCT.Lip),
    **dict.fromkeys(("muscconstrict", "constrictors", "pharyngealconstrictors"), PHARYNGEAL_CONSTRICTOR),
    **dict.fromkeys(("external", "body", "outline", "bodyoutline", "patientoutline"), _SCT.EntireBody),
}
_TARGETS: dict[str, Code] = {"ptv": _SCT.PlanningTargetVolume, "ctv": _SCT.ClinicalTargetVolume,
                             "gtv": _SCT.GrossTumorVolume}
_LEFT, _RIGHT = {"l", "left", "lt", "links", "sin"}, {"r", "right", "rt", "rechts", "dex"}
_EXTERNAL = {"external", "body", "outline", "bodyoutline", "patientoutline", "externalcontour"}


@dataclass(frozen=True)
class StructureCode:
    """The coded meaning of a structure: category, type and an optional laterality modifier."""

    category: Code
    type: Code
    modifier: Code | None = None

    @property
    def is_generic(self) -> bool:
        """True when the name matched nothing (the generic ``Organ``)."""
        return self.type == _SCT.Organ


def _key(name: str) -> list[str]:
    return re.sub(r"[\s_\-.]+", " ", str(name).strip().lower()).split()


def _side(tokens: list[str]) -> tuple[list[str], Code | None]:
    """Tokens without a leading or trailing side word, and the side's modifier."""
    if len(tokens) > 1 and tokens[-1] in _LEFT | _RIGHT:
        return tokens[:-1], _SCT.Left if tokens[-1] in _LEFT else _SCT.Right
    if len(tokens) > 1 and tokens[0] in _LEFT | _RIGHT:
        return tokens[1:], _SCT.Left if tokens[0] in _LEFT else _SCT.Right
    compact = "".join(tokens)
    for word, side in (("left", _SCT.Left), ("right", _SCT.Right)):
        for rest in (compact[len(word):] if compact.startswith(word) else None,
                     compact[: -len(word)] if compact.endswith(word) else None):
            if rest and rest in _ANATOMY:  # LeftParotid, ParotidRight
                return [rest], side
    return tokens, None


def structure_code(name: str) -> StructureCode:
    """The SNOMED CT category, type and laterality of a structure name (see the module docstring)."""
    tokens = _key(name)
    compact = "".join(tokens)
    for prefix, concept in _TARGETS.items():
        if compact.startswith(prefix):
            return StructureCode(_SCT.SpatialAndRelationalConcept, concept)
    rest, side = _side(tokens)
    concept = _ANATOMY.get("".join(rest))
    if concept is None:
        return StructureCode(_SCT.AnatomicalStructure, _SCT.Organ)
    return StructureCode(_SCT.AnatomicalStructure, concept, side)


def roi_interpreted_type(name: str) -> str:
    """The RTSTRUCT ``RTROIInterpretedType`` of a structure name: EXTERNAL, PTV, CTV, GTV, AVOIDANCE,
    CONTROL or ORGAN (see the module docstring)."""
    tokens = _key(name)
    compact = "".join(tokens)
    if re.match(r"^z[A-Z_]", str(name).strip()):  # TG-263: 'z' marks structures not for clinical evaluation
        return "AVOIDANCE" if "avoid" in compact else "CONTROL"
    for prefix in _TARGETS:
        if compact.startswith(prefix):
            return prefix.upper()
    if compact in _EXTERNAL:
        return "EXTERNAL"
    if "prv" in tokens or re.search(r"prv\d*$", compact) or compact.startswith("avoid"):
        return "AVOIDANCE"
    return "ORGAN"


def slicer_terminology(name: str) -> str:
    """A 3D Slicer ``TerminologyEntry`` tag value for :func:`structure_code` (``.seg.nrrd`` segments)."""
    code = structure_code(name)

    def part(concept: Code | None) -> str:
        return "^^" if concept is None else f"{concept.scheme_designator}^{concept.value}^{concept.meaning}"

    return ("Segmentation category and type - DICOM master list"
            f"~{part(code.category)}~{part(code.type)}~{part(code.modifier)}"
            "~Anatomic codes - DICOM master list~^^~^^")
