"""Names from the file system that are not UTF-8 (POSIX names may hold any bytes) end up in
every output as text, with their bytes written as \\xNN: file names, study folders of the
runner's layout and of other tools' layouts."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

import pytest

from hpo_analysis import extract
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names of arbitrary bytes")
def test_extract_writes_its_outputs_for_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A trial file whose name is not UTF-8 (POSIX allows any bytes) is read or rejected like
    any other file; it must not stop extract from writing manifest.csv."""
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=2, n_diverged=1)
    first = sorted(tree.rglob("trial_*.json"))[0]
    odd = os.fsencode(first.parent) + b"/trial_\xff0009.json"
    with open(odd, "wb") as handle:
        handle.write(first.read_bytes().replace(b'"trial_number": 0', b'"trial_number": 9'))
    result = extract([tree], tmp_path / "out", Settings(), jobs=1)
    assert (tmp_path / "out" / "manifest.csv").is_file()
    assert result.n_files == sum(1 for p in tree.rglob("*") if p.is_file())
    assert result.validation_failures == []
    manifest = (tmp_path / "out" / "manifest.csv").read_text("utf-8")
    assert "trial_\\xff0009.json" in manifest  # the name's bytes written as \xNN


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names of arbitrary bytes")
def test_a_study_folder_whose_name_is_not_utf8_names_its_study_in_text(tmp_path: Path) -> None:
    """The study named after a folder whose name is not UTF-8 is written with the bytes as
    \\xNN in every output, which validate then accepts."""
    tree = tmp_path / "hpo"
    generate_example(tree, budgets=("2M",), horizons=("h1",), trials_per_study=3, n_diverged=1)
    (folder,) = [p for p in tree.iterdir() if p.is_dir()]
    for dump in folder.glob("*.json"):
        dump.unlink()  # trial files only: their study is the folder's name
    os.rename(os.fsencode(folder), os.fsencode(tree) + b"/study_\xfe")
    result = extract([tree], tmp_path / "out", Settings(), jobs=1)
    assert result.validation_failures == []
    assert result.n_trials == 3
    summary = (tmp_path / "out" / "hpo_summary.csv").read_text("utf-8").splitlines()
    assert all(line.startswith("study_\\xfe,") for line in summary[1:])


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names of arbitrary bytes")
@pytest.mark.parametrize("layout", ["ray/asha_width_lr", "keras_tuner/kt_random_units"])
def test_another_tools_experiment_folder_not_utf8(tmp_path: Path, layout: str) -> None:
    """Ray Tune and KerasTuner name the study after the experiment's folder: its bytes are
    written as \\xNN in the study column and in the manifest's paths and reasons."""
    tool, folder = layout.split("/")
    tree = tmp_path / tool
    tree.mkdir()
    shutil.copytree(FIXTURES / tool / folder, tree / "copy")
    os.rename(os.fsencode(tree / "copy"), os.fsencode(tree) + b"/exp_\xfe")
    out = tmp_path / "out"
    result = extract([tree], out, Settings(), jobs=1)
    assert result.validation_failures == []
    assert result.n_trials > 0
    summary = (out / "hpo_summary.csv").read_text("utf-8").splitlines()
    assert {line.split(",", 1)[0] for line in summary[1:]} == {"exp_\\xfe"}
    with open(out / "manifest.csv", encoding="utf-8", newline="") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    assert len(paths) == sum(1 for p in tree.rglob("*") if p.is_file())  # every file is there
    assert all(path.startswith(f"{tree.as_posix()}/exp_\\xfe/") for path in paths)
