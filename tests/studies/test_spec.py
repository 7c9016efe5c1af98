"""The whole study spec is checked before anything is written: arm methods and options, models, losses,
samplers, every configuration value, and the names that become folders; each error names the spec file and
the arm."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clinseg.errors import ConfigError
from clinseg.studies.plan import load_and_prepare
from clinseg.studies.spec import load_study_spec
from tests.studies._helpers import TINY_BASE


def _refused(spec: Path, study: Path, pattern: str) -> None:
    """Prepare ``spec`` into ``study``; assert a ConfigError naming the spec file and matching ``pattern``,
    and that nothing was written."""
    with pytest.raises(ConfigError) as info:
        load_and_prepare(spec, study)
    message = str(info.value)
    assert message.startswith(f"{spec}: "), message
    assert re.search(pattern, message), message
    assert not study.exists()


@pytest.mark.parametrize(("arm", "pattern"), [
    ({"name": "fast", "method": "segmnt"},
     r"arm 'fast': unknown study arm method 'segmnt'; known: .*baseline.*segment"),
    ({"name": "fast", "config": {"model": "unet9d"}}, r"arm 'fast': unknown model 'unet9d'; known: .*resfcn3d"),
    ({"name": "fast", "config": {"loss": "dice_bce"}}, r"arm 'fast': unknown loss 'dice_bce'; known: .*masked_bce"),
    ({"name": "fast", "config": {"sampler": "uniform"}}, r"arm 'fast': unknown sampler 'uniform'; known: .*organ-crop"),
    ({"name": "fast", "config": {"model_kwargs": {"width": 3}}},
     r"arm 'fast': model 'resfcn3d' takes no option\(s\) \['width'\]"),
    ({"name": "fast", "config": {"sampler": "organ-crop", "sampler_kwargs": {"margins": 3}}},
     r"arm 'fast': sampler 'organ-crop' takes no option\(s\) \['margins'\]"),
    ({"name": "fast", "config": {"iterations": 0}}, r"arm 'fast': iterations must be >= 1, got 0"),
    ({"name": "fast", "config": {"unknowns": "voxel"}, "method": "baseline", "options": {"clicks": 2}},
     r"arm 'fast': options \['clicks'\] unknown; method 'baseline' takes none"),
    ({"name": "click", "method": "interactive", "options": {"click": 1}},
     r"arm 'click': options \['click'\] unknown; method 'interactive' takes \['clicks'\]"),
    ({"name": "click", "method": "interactive", "options": {"clicks": 0}},
     r"arm 'click': clicks must be an integer >= 1, got 0"),
    ({"name": "m", "method": "method", "options": {"method": "tripla"}},
     r"arm 'm': unknown training method 'tripla'; known: .*two-stage"),
    ({"name": "m", "method": "method", "options": {"method": "2d-3d", "method_options": {"size_2d": 8}}},
     r"arm 'm': training method '2d-3d' takes no option\(s\) \['size_2d'\]"),
    ({"name": "m", "method": "method", "options": {}}, r"arm 'm': the 'method' arm needs the option method: NAME"),
    ({"name": "v", "method": "vote", "options": {"of": ["baseline", "later"]}},
     r"arm 'v': 'of' names \['later'\], not an arm listed before 'v'"),
    ({"name": "v", "method": "vote", "options": {"of": ["baseline", "baseline"], "thresholds": [0.4, 2, 0.4]}},
     r"arm 'v': .*thresholds"),
    ({"name": "a", "method": "anatomy", "options": {"of": ["baseline"], "disable": ["eyes-are-round"]}},
     r"arm 'a': 'disable' names unknown anatomy rule\(s\) \['eyes-are-round'\]; known: "),
    ({"name": "a", "method": "anatomy", "options": {"of": "baseline"}},
     r"arm 'a': 'of' must be a list of arm names, got 'baseline'"),
    ({"name": "t", "method": "two-stage", "options": {"margin": -1}}, r"arm 't': margin must be >= 0, got -1"),
    ({"name": "g", "method": "gt-localised", "options": {"organ_from": "nowhere"}},
     r"arm 'g': 'organ_from' names \['nowhere'\], not an arm listed before 'g'"),
    ({"name": "p", "method": "pretrained", "options": {"pretrain": {"iters": 3}}},
     r"arm 'p': .*unknown option\(s\) \['iters'\]"),
    ({"name": "j", "method": "multitask", "options": {"with": ["NoSuchDataset"]}},
     r"arm 'j': 'with' dataset .*NoSuchDataset.* has no dataset.json"),
])
def test_a_bad_arm_is_refused_before_anything_is_written(write_spec, tmp_path: Path, arm: dict,
                                                         pattern: str) -> None:
    _refused(write_spec(arms=["baseline", arm]), tmp_path / "S", pattern)


def test_a_bad_base_value_is_refused_naming_the_file_and_each_arm(write_spec, tmp_path: Path) -> None:
    _refused(write_spec(base={**TINY_BASE, "batch_size": -3}), tmp_path / "S",
             r"arm 'baseline': batch_size must be >= 1, got -3")
    _refused(write_spec(base={**TINY_BASE, "preset": "fastest"}), tmp_path / "S",
             r"arm 'baseline': unknown preset 'fastest'")
    _refused(write_spec(base={**TINY_BASE, "label_mode": "multiclass", "unknowns": "voxel"}), tmp_path / "S",
             r"arm 'baseline': voxel-level labels .* need label_mode multilabel")


def test_a_config_the_dataset_cannot_serve_is_refused(write_spec, tmp_path: Path) -> None:
    # the tiny dataset has one channel: channel 1 exists only once the config meets the dataset
    _refused(write_spec(arms=[{"name": "t2", "config": {"channels": [1]}}]), tmp_path / "S",
             r"arm 't2': channels \[1\] name channels beyond the dataset's 1 \(T1\)")


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", "two words ", "x" * 129])
def test_arm_names_must_be_safe_folder_names(write_spec, tmp_path: Path, name: str) -> None:
    spec = write_spec(arms=[{"name": name}])
    with pytest.raises(ConfigError) as info:
        load_study_spec(spec)
    assert str(info.value).startswith(f"{spec}: arm name {name!r} "), info.value
    assert "names become file names" in str(info.value)
    assert not (tmp_path / "S").exists()


def test_names_with_spaces_inside_and_dots_pass(write_spec) -> None:
    spec = load_study_spec(write_spec(arms=["baseline", {"name": "lr 0.01", "config": {"lr": 0.01}}]))
    assert [a.name for a in spec.arms] == ["baseline", "lr 0.01"]
