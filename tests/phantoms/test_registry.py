"""The phantom registry: names, the factory, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinseg.errors import ConfigError
from clinseg.phantoms import (
    generate_phantom,
    get_phantom,
    list_phantoms,
    register_phantom,
    registry,
)


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.PHANTOMS, "_items", dict(registry.PHANTOMS._items))


def test_builtin_head_oar_is_registered() -> None:
    assert "head-oar" in list_phantoms()
    assert list_phantoms() == sorted(list_phantoms())
    assert get_phantom("head-oar").__name__ == "generate_head_oar"


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown phantom 'nope'; known: .*head-oar"):
        generate_phantom("nope", "anywhere")


def test_register_and_generate_a_new_phantom(clean_registry: None, tmp_path: Path) -> None:
    calls = []

    @register_phantom("toy")
    def toy(out_dir: Path, *, cases: int = 1, test_cases: int = 0, seed: int = 0, spacing_mm: float = 2.0) -> Path:
        calls.append((out_dir, cases, test_cases, seed, spacing_mm))
        return out_dir

    assert "toy" in list_phantoms()
    assert generate_phantom("toy", str(tmp_path / "t"), cases=3, seed=7) == tmp_path / "t"
    assert calls == [(tmp_path / "t", 3, 0, 7, 2.0)]
    with pytest.raises(ConfigError, match="no option.*bogus"):
        generate_phantom("toy", tmp_path, bogus=1)


def test_a_name_cannot_be_taken_twice(clean_registry: None) -> None:
    def other(out_dir: Path, **kw: object) -> Path:
        return out_dir

    with pytest.raises(ValueError, match="already registered"):
        register_phantom("head-oar")(other)


def test_phantom_dataset_folder_gets_umask_permissions(tmp_path: Path) -> None:
    """The phantom writer builds the dataset in a mkdtemp folder (0700) and renames it: it must end 0o755."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        generate_phantom("ct-bone", tmp_path / "ph", cases=1, test_cases=0, spacing_mm=8.0)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ph").stat().st_mode) == 0o755
