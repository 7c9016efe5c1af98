"""YAML configuration files (:mod:`clinseg.configfile`): a key given twice is refused, naming file, key, line."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinseg.configfile import load_yaml, read_mapping
from clinseg.errors import ConfigError
from clinseg.pretraining.config import load_pretrain_config
from clinseg.studies.spec import load_study_spec
from clinseg.training.config import load_config


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "key", "line"), [
    ("batch_size: 2\nlr: 0.1\nbatch_size: 4\n", "'batch_size'", 3),
    ("model_kwargs:\n  features: [4, 8]\n  features: [8, 16]\n", "'features'", 3),
    ("arms:\n  - name: a\n    config: {lr: 0.1, lr: 0.2}\n", "'lr'", 3),
    ("1: a\n1.0: b\n", "1.0", 2),
])
def test_a_key_given_twice_is_refused(tmp_path: Path, text: str, key: str, line: int) -> None:
    path = _write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as info:
        read_mapping(path)
    assert str(info.value) == (f"{path}: key {key} appears twice in one mapping (again on line {line}; the first "
                               "value would be ignored)")


def test_merge_keys_may_be_overridden_and_equal_keys_in_different_mappings_pass() -> None:
    text = "base: &b {lr: 0.1, seed: 1}\narm:\n  <<: *b\n  lr: 0.2\nother: {lr: 0.1}\n"
    assert load_yaml(text, "x.yaml") == {"base": {"lr": 0.1, "seed": 1}, "arm": {"lr": 0.2, "seed": 1},
                                         "other": {"lr": 0.1}}


def test_other_mistakes_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c.yaml: config file not found"):
        read_mapping(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"c.yaml: invalid YAML"):
        read_mapping(_write(tmp_path / "c.yaml", "a: [1,"))
    with pytest.raises(ConfigError, match=r"c.yaml: expected a mapping of options"):
        read_mapping(_write(tmp_path / "c.yaml", "- 1\n- 2\n"))
    (tmp_path / "bin.yaml").write_bytes(b"lr: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bin.yaml: config file is not UTF-8 text"):
        read_mapping(tmp_path / "bin.yaml")
    with pytest.raises(ConfigError, match=r"cannot read the config file"):
        read_mapping(tmp_path)  # a folder
    assert read_mapping(_write(tmp_path / "empty.yaml", "")) == {}


def test_every_config_reader_refuses_duplicates(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", "seed: 1\nseed: 2\n")
    for read in (load_config, load_pretrain_config, load_study_spec):
        with pytest.raises(ConfigError, match=rf"^{path}: key 'seed' appears twice"):
            read(path)
