"""Issue 22: SNOMED CT codes and RT ROI types read from structure names (TG-263 and common spellings)."""

import pytest

from clinseg.io.dicom.codes import (
    roi_interpreted_type,
    slicer_terminology,
    structure_code,
)


@pytest.mark.parametrize(("name", "code", "side"), [
    ("Brainstem", "119238007", None), ("Brain Stem", "119238007", None), ("Brain", "12738006", None),
    ("SpinalCord", "2748008", None), ("OpticChiasm", "244453006", None), ("OpticNrv_R", "18234004", "24028007"),
    ("Eye_L", "81745001", "7771000"), ("L Eye", "81745001", "7771000"), ("Lens_R", "78076003", "24028007"),
    ("Cochlea_L", "80169004", "7771000"), ("Pituitary", "56329008", None), ("Hippocampus_R", "5366008", "24028007"),
    ("Lobe_Temporal_L", "78277001", "7771000"), ("Parotid_L", "45289007", "7771000"),
    ("LeftParotid", "45289007", "7771000"), ("Glnd_Submand_R", "54019009", "24028007"),
    ("Glnd_Lacrimal_L", "13561001", "7771000"), ("Glnd_Thyroid", "69748006", None),
    ("Bone_Mandible", "91609006", None), ("Cavity_Oral", "74262004", None), ("Larynx", "4596009", None),
    ("Esophagus", "32849002", None), ("Lips", "48477009", None), ("Musc_Constrict", "4866005", None),
    ("External", "38266002", None), ("PTV_70", "228793007", None), ("CTVn", "228792002", None),
    ("GTVp", "228791009", None), ("Tumour bed", "91772007", None),
])
def test_structure_codes(name: str, code: str, side: str | None) -> None:
    found = structure_code(name)
    assert found.type.value == code and found.type.scheme_designator == "SCT"
    assert (found.modifier.value if found.modifier else None) == side
    assert found.is_generic == (code == "91772007")


@pytest.mark.parametrize(("name", "kind"), [
    ("Brainstem", "ORGAN"), ("Parotid_L", "ORGAN"), ("PTV_High", "PTV"), ("ptv70", "PTV"), ("CTV_Low", "CTV"),
    ("GTVn", "GTV"), ("External", "EXTERNAL"), ("BODY", "EXTERNAL"), ("Parotid_L_PRV05", "AVOIDANCE"),
    ("SpinalCord PRV", "AVOIDANCE"), ("Avoid_Mouth", "AVOIDANCE"), ("zPTV_opt", "CONTROL"),
    ("zAvoid_Ring", "AVOIDANCE"), ("Skin", "ORGAN"), ("Zygoma", "ORGAN"),
])
def test_roi_interpreted_types(name: str, kind: str) -> None:
    assert roi_interpreted_type(name) == kind


def test_slicer_terminology_entry() -> None:
    assert slicer_terminology("Parotid_R") == (
        "Segmentation category and type - DICOM master list~SCT^91723000^Anatomical Structure"
        "~SCT^45289007^Parotid gland~SCT^24028007^Right~Anatomic codes - DICOM master list~^^~^^")
