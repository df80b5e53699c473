"""Annotations survive re-extraction, changed inputs, spreadsheet edits and concurrent edits."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from hpo_analysis.annotations import read_annotations

from .conftest import curve, read_csv, run_cli, strict_json, write_trial

STUDY = "s_2M_h1"


def _tree(root: Path, numbers: range = range(3)) -> Path:
    src = root / "hpo"
    for n in numbers:
        write_trial(
            src,
            STUDY,
            n,
            {
                "trial_number": n,
                "value": 0.5 + n / 10,
                "user_attrs": {"learning_curve": curve(0.7, 0.6)},
            },
        )
    return src


def _row(out: Path, trial: int) -> dict[str, str]:
    return next(r for r in read_csv(out / "hpo_summary.csv") if r["trial_num"] == str(trial))


def test_annotate_then_extract_merges_and_keeps(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    done = run_cli("annotate", str(out), STUDY, "1", "--tag", "odd", "--note", "=look at lr")
    assert done.returncode == 0, done.stderr
    assert run_cli("annotate", str(out), STUDY, "1", "--tag", "keep").returncode == 0
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    row = _row(out, 1)
    assert (row["tags"], row["note"]) == ("keep; odd", "'=look at lr")
    full = strict_json(out / "hpo_full.json")
    trial = next(t for t in full["trials"] if t["trial_num"] == 1)
    assert [a["tag"] for a in trial["annotations"]] == ["odd", "keep"]
    assert trial["note"] == "=look at lr"
    before = (out / "annotations.csv").read_bytes()
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    assert (out / "annotations.csv").read_bytes() == before  # carried over byte for byte


def test_orphans_are_kept_and_reported(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    assert run_cli("annotate", str(out), STUDY, "2", "--tag", "gone-soon").returncode == 0
    (src / STUDY / "trials" / "trial_0002.json").unlink()
    rerun = run_cli("extract", str(src), "--out", str(out))
    assert rerun.returncode == 0
    assert f"annotation of {STUDY}/2 (tag 'gone-soon'): no such trial" in rerun.stderr
    assert [a.tag for a in read_annotations(out / "annotations.csv")] == ["gone-soon"]
    assert strict_json(out / "hpo_full.json")["metadata"]["annotations"]["orphans"] == [
        f"{STUDY}/2"
    ]
    write_trial(src, STUDY, 2, {"trial_number": 2, "value": 0.9})
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    assert _row(out, 2)["tags"] == "gone-soon"


def test_edits_typed_into_the_summary_csv_are_harvested(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    with open(out / "hpo_summary.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
        header = list(rows[0])
    rows[0]["tags"] = "baseline; check"
    rows[2]["note"] = "rerun with warmup"
    with open(out / "hpo_summary.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    assert _row(out, 0)["tags"] == "baseline; check"
    assert _row(out, 2)["note"] == "rerun with warmup"
    assert len(read_annotations(out / "annotations.csv")) == 3


@pytest.mark.slow
def test_concurrent_annotations_are_all_kept(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hpo_analysis",
                "annotate",
                str(out),
                STUDY,
                str(i % 3),
                "--tag",
                f"t{i}",
            ],
            stdout=subprocess.DEVNULL,
        )
        for i in range(12)
    ]
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "hpo_analysis", "extract", str(src), "--out", str(out), "-q"],
            stdout=subprocess.DEVNULL,
        )
    )
    assert [p.wait() for p in procs] == [0] * 13
    assert sorted(a.tag for a in read_annotations(out / "annotations.csv")) == sorted(
        f"t{i}" for i in range(12)
    )


def test_broken_annotations_file_is_kept_not_merged(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli("extract", str(src), "--out", str(out)).returncode == 0
    (out / "annotations.csv").write_text("study,trial_num,tag\ns,notanumber,x\n")
    rerun = run_cli("extract", str(src), "--out", str(out))
    assert rerun.returncode == 0
    assert "trial_num 'notanumber' is not a number" in rerun.stderr
    assert (out / "annotations.csv").read_text() == "study,trial_num,tag\ns,notanumber,x\n"
    assert run_cli("annotate", str(tmp_path), STUDY, "0", "--tag", "x").returncode == 2
