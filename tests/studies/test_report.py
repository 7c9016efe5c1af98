"""The study report: files written from a hand-built results.csv, HTML with figures, clear input errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pandas as pd
import pytest

import clinseg.studies.report as report_module
from clinseg.errors import ClinsegError, ConfigError, DatasetError
from clinseg.studies.report import build_study_report, read_results, read_study_info

ARMS = ("baseline", "pretrained")
MODES = ("concentrated", "distributed")
SIZES = (1, 3, 7)
STRUCTURES = ("eye_r", "brainstem", "chiasm")


def _results() -> pd.DataFrame:
    """2 arms x 2 modes x 3 sizes x 2 repeats x 3 cases x 3 structures; chiasm is not delineated in t2."""
    rows = []
    for (a, arm), (m, mode), size, repeat, c, (s, structure) in itertools.product(
            enumerate(ARMS), enumerate(MODES), SIZES, (0, 1), range(3), enumerate(STRUCTURES)):
        delineated = not (c == 2 and structure == "chiasm")
        dice = 0.4 + 0.06 * size + 0.03 * a - 0.02 * m + 0.01 * repeat + 0.005 * c + 0.01 * s
        rows.append({"arm": arm, "mode": mode, "size": size, "repeat": repeat,
                     "run": f"{arm}-{mode}-M{size}-r{repeat}", "case": f"00{c}", "structure": structure,
                     "delineated": delineated, "dice": dice if delineated else math.nan,
                     "hd95": 8.0 / size + c if delineated else math.nan, "assd": math.nan, "surface_dice": math.nan})
    return pd.DataFrame(rows)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    _results().to_csv(folder / "results.csv", index=False)
    (folder / "study.json").write_text(json.dumps({"name": "demo", "structures": ["chiasm", "eye_r", "brainstem"],
                                                   "tolerance": 0.05}))
    return folder


def test_report_writes_tables_figures_and_html(study: Path) -> None:
    out = build_study_report(study, dpi=40)
    assert out == study / "report.html"
    summary = pd.read_csv(study / "summary.csv")
    assert len(summary) == 2 * 2 * 3 * 3
    assert list(summary["structure"][:3]) == ["chiasm", "eye_r", "brainstem"]  # study.json order
    first = summary.iloc[1]  # baseline, concentrated, M=1, eye_r: networks 0.46 + 0.005 and 0.47 + 0.005
    assert (first["structure"], first["networks"], first["ci_unit"]) == ("eye_r", 2, "case")  # < 3 networks
    assert first["dice_mean"] == pytest.approx(0.47)
    comparisons = pd.read_csv(study / "comparisons.csv")
    # arms: 2 modes x 3 sizes x 3 structures x 2 metrics; modes: 2 arms x the same
    assert (comparisons["comparison"] == "arms").sum() == 36 and (comparisons["comparison"] == "modes").sum() == 36
    assert set(comparisons["test"]) == {"Wilcoxon signed-rank", "Mann-Whitney U"}
    saturation = pd.read_csv(study / "saturation.csv")
    assert len(saturation) == 2 * 2 * 3 and set(saturation["saturation_size"]) == {7}  # steps of 0.12 / 0.24
    figures = sorted(p.name for p in (study / "figures").glob("*.png"))
    assert len(figures) == 2 * (4 + 2 + 2)  # dice and hd95: learning curves, modes per arm, arms per mode
    assert "learning-curve_dice_baseline_concentrated.png" in figures
    assert all((study / "figures" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    page = out.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(figures)
    assert "Wilcoxon signed-rank" in page and "Mann-Whitney U" in page and "95% confidence interval" in page
    assert "clinseg study: demo" in page
    assert not list(study.glob(".*"))  # no temporary file left behind


def test_report_uses_t_tests_and_defaults(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "_figures", lambda *args: {"learning": [], "modes": [], "arms": []})
    (study / "study.json").write_text(json.dumps({"test": "ttest"}))
    page = build_study_report(study).read_text(encoding="utf-8")
    assert "paired t-test" in page and "Welch t-test" in page and "within 0.02 of" in page
    assert set(pd.read_csv(study / "comparisons.csv")["test"]) == {"paired t-test", "Welch t-test"}
    (study / "study.json").unlink()
    build_study_report(study)
    assert list(pd.read_csv(study / "summary.csv")["structure"][:3]) == list(STRUCTURES)  # order of appearance
    assert read_study_info(study)["name"] == "study"


def test_missing_results_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="results.csv: study results not found") as info:
        build_study_report(tmp_path)
    assert isinstance(info.value, ClinsegError) and str(tmp_path) in str(info.value)


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty file"),
    ("arm,mode,size,repeat,run,case,structure,delineated,dice,hd95\n", "no rows"),
    ("arm,mode,size,repeat,run,case,structure,delineated,dice\nb,c,1,0,r,t,A,True,0.5\n", r"lacks column\(s\) \['hd95'\]"),
    ("arm,mode,size,repeat,run,case,structure,delineated,dice,hd95\nb,c,x,0,r,t,A,True,0.5,1\n", "'size' must hold"),
    ("arm,mode,size,repeat,run,case,structure,delineated,dice,hd95\nb,c,1,0,r,t,A,False,,\n", "no row with a ref"),
])
def test_malformed_results_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "results.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read_results(path)


def test_malformed_study_json_is_a_config_error(study: Path) -> None:
    for content, message in (("{", "invalid JSON"), ('{"test": "anova"}', "test must be one of"),
                             ('{"tolerance": -1}', "tolerance must be"), ("[1]", "expected a JSON object")):
        (study / "study.json").write_text(content)
        with pytest.raises(ConfigError, match=message):
            build_study_report(study)
