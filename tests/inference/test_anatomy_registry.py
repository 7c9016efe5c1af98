"""Rule registry, settings and roles of clinseg.inference.anatomy."""

from __future__ import annotations

import numpy as np
import pytest

from clinseg.errors import ConfigError
from clinseg.inference.anatomy import (
    PRESETS,
    AnatomyRoles,
    AnatomySettings,
    apply_anatomy,
    get_rule,
    list_rules,
    register_rule,
)
from clinseg.inference.anatomy import registry as registry_module
from clinseg.io.image import Geometry
from clinseg.registry import Registry


def test_rules_are_listed_in_the_seed_order() -> None:
    assert list_rules() == ["brain_holes", "sides", "eyes", "lenses", "chiasm", "optic_nerves"]
    assert [get_rule(n).order for n in list_rules()] == [10, 20, 30, 40, 50, 60]


def test_only_sides_has_a_step_when_disabled() -> None:
    assert [n for n in list_rules() if get_rule(n).when_disabled is not None] == ["sides"]


def test_unknown_rule_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown anatomy rule 'nerves'.*optic_nerves"):
        get_rule("nerves")
    geo = Geometry(spacing=(1.0, 1.0, 1.0), shape=(2, 2, 2))
    with pytest.raises(ConfigError, match="known: brain_holes"):
        apply_anatomy({"Brain": np.ones((2, 2, 2), bool)}, None, geo, settings=AnatomySettings(disabled=("eye",)))


def test_a_taken_order_is_refused() -> None:
    with pytest.raises(ValueError, match="order 30 is already taken by 'eyes'"):
        register_rule("other", order=30)(lambda case: None)
    assert "other" not in list_rules()


def test_a_new_rule_is_a_function_plus_a_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    rules: Registry = Registry("anatomy rule")
    for name in registry_module._RULES.names():
        rules.register(name)(registry_module._RULES.get(name))
    monkeypatch.setattr(registry_module, "_RULES", rules)
    monkeypatch.setattr(registry_module, "_SPECS", dict(registry_module._SPECS))

    @register_rule("no_brainstem", order=70)
    def no_brainstem(case) -> None:  # type: ignore[no-untyped-def]
        case.masks["Brainstem"] = np.zeros_like(case.masks["Brainstem"])

    assert list_rules()[-1] == "no_brainstem"
    geo = Geometry(spacing=(1.0, 1.0, 1.0), shape=(2, 2, 2))
    masks = {"Brainstem": np.ones((2, 2, 2), bool)}
    assert not apply_anatomy(masks, None, geo)["Brainstem"].any()
    off = AnatomySettings(disabled=("no_brainstem",))
    assert apply_anatomy(masks, None, geo, settings=off)["Brainstem"].all()


def test_settings_default_to_the_seed_values() -> None:
    s = AnatomySettings()
    assert s.disabled == ()
    assert (s.min_eye_volume_ml, s.landmark_points, s.label_penalty, s.target_cost) == (4.0, 30, 100.0, 0.001)
    assert (s.fat_quantile, s.fat_fraction) == (98.0, 0.8)
    # 7, 3 and 2.5 voxels of 0.7 mm
    assert s.nerve_radius_eye_mm == pytest.approx(7 * 0.7)
    assert s.nerve_radius_chiasm_mm == pytest.approx(3 * 0.7)
    assert s.nerve_core_radius_mm == pytest.approx(2.5 * 0.7)
    assert all(s.is_enabled(n) for n in list_rules())
    assert PRESETS["seed001"] == s


def test_settings_reject_bad_values() -> None:
    assert AnatomySettings(disabled=["eyes"]).disabled == ("eyes",)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="landmark_points"):
        AnatomySettings(landmark_points=0)
    with pytest.raises(ValueError, match="fat_quantile"):
        AnatomySettings(fat_quantile=101.0)
    with pytest.raises(ValueError, match="nerve_core_radius_mm"):
        AnatomySettings(nerve_core_radius_mm=0.0)
    with pytest.raises(ValueError, match="connectivity"):
        AnatomySettings(connectivity=4)  # type: ignore[arg-type]


def test_roles_default_to_tg263_names() -> None:
    roles = AnatomyRoles()
    assert (roles.brain, roles.eye, roles.lens, roles.optic_nerve, roles.chiasm) == (
        "Brain",
        "Eye",
        "Lens",
        "OpticNrv",
        "OpticChiasm",
    )
    assert dict(roles.bilateral) == {
        "Eye": ("Eye_L", "Eye_R"),
        "Lens": ("Lens_L", "Lens_R"),
        "OpticNrv": ("OpticNrv_L", "OpticNrv_R"),
        "Hippocampus": ("Hippocampus_L", "Hippocampus_R"),
    }
    assert roles.is_bilateral("Eye") and not roles.is_bilateral("OpticChiasm")
    with pytest.raises(ValueError, match="two distinct names"):
        AnatomyRoles(bilateral={"Eye": ("Eye", "Eye")})
