"""Annotations survive re-extraction, changed inputs, spreadsheet edits and concurrent edits."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis.annotations import read_annotations

from .conftest import curve, read_csv, run_cli, strict_json, write_trial

STUDY = "s_2M_h1"
# the report is not what these tests check (annotations are in the tables, not in the report)
EXTRACT = ("extract", "--no-report")


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
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    done = run_cli("annotate", str(out), STUDY, "1", "--tag", "odd", "--note", "=look at lr")
    assert done.returncode == 0, done.stderr
    assert run_cli("annotate", str(out), STUDY, "1", "--tag", "keep").returncode == 0
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    row = _row(out, 1)
    assert (row["tags"], row["note"]) == ("keep; odd", "'=look at lr")
    full = strict_json(out / "hpo_full.json")
    trial = next(t for t in full["trials"] if t["trial_num"] == 1)
    assert [a["tag"] for a in trial["annotations"]] == ["odd", "keep"]
    assert trial["note"] == "=look at lr"
    before = (out / "annotations.csv").read_bytes()
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    assert (out / "annotations.csv").read_bytes() == before  # carried over byte for byte


def test_orphans_are_kept_and_reported(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    assert run_cli("annotate", str(out), STUDY, "2", "--tag", "gone-soon").returncode == 0
    (src / STUDY / "trials" / "trial_0002.json").unlink()
    rerun = run_cli(*EXTRACT, str(src), "--out", str(out))
    assert rerun.returncode == 0
    assert f"annotation of {STUDY}/2 (tag 'gone-soon'): no such trial" in rerun.stderr
    assert [a.tag for a in read_annotations(out / "annotations.csv")] == ["gone-soon"]
    assert strict_json(out / "hpo_full.json")["metadata"]["annotations"]["orphans"] == [
        f"{STUDY}/2"
    ]
    write_trial(src, STUDY, 2, {"trial_number": 2, "value": 0.9})
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    assert _row(out, 2)["tags"] == "gone-soon"


def test_edits_typed_into_the_summary_csv_are_harvested(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    with open(out / "hpo_summary.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
        header = list(rows[0])
    rows[0]["tags"] = "baseline; check"
    rows[2]["note"] = "rerun with warmup"
    with open(out / "hpo_summary.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
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
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    (out / "annotations.csv").write_text("study,trial_num,tag\ns,notanumber,x\n")
    rerun = run_cli(*EXTRACT, str(src), "--out", str(out))
    assert rerun.returncode == 0
    assert "trial_num 'notanumber' is not a number" in rerun.stderr
    assert (out / "annotations.csv").read_text() == "study,trial_num,tag\ns,notanumber,x\n"
    assert run_cli("annotate", str(tmp_path), STUDY, "0", "--tag", "x").returncode == 2


# --- exact edit semantics: annotations.csv wins unless a summary cell was edited --------------


def _extract(src: Path, out: Path) -> None:
    from hpo_analysis.pipeline import extract

    result = extract([src], out, cache=False)
    assert not result.validation_failures, result.validation_failures


def _cells(out: Path, trial: int) -> tuple[str, str]:
    row = _row(out, trial)
    return (row["tags"], row["note"])


def _edit_summary(out: Path, trial: int, **cells: str) -> None:
    with open(out / "hpo_summary.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["trial_num"] == str(trial):
            row.update(cells)
    with open(out / "hpo_summary.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_a_corrected_note_sticks_across_extracts(tmp_path: Path) -> None:
    from hpo_analysis.annotations import add_annotation

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    add_annotation(out, STUDY, 1, note="first note")
    _extract(src, out)
    add_annotation(out, STUDY, 1, note="corrected note")
    _extract(src, out)
    assert [a.note for a in read_annotations(out / "annotations.csv")] == ["corrected note"]
    assert _cells(out, 1) == ("", "corrected note")
    _extract(src, out)
    assert _cells(out, 1) == ("", "corrected note")


def test_an_updated_tag_note_replaces_the_old_one(tmp_path: Path) -> None:
    from hpo_analysis.annotations import add_annotation

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    add_annotation(out, STUDY, 1, tag="lr", note="v1")
    _extract(src, out)
    add_annotation(out, STUDY, 1, tag="lr", note="v2")
    _extract(src, out)
    assert _cells(out, 1) == ("lr", "v2")
    assert [(a.tag, a.note) for a in read_annotations(out / "annotations.csv")] == [("lr", "v2")]


def test_removed_annotations_stay_removed(tmp_path: Path) -> None:
    from hpo_analysis.annotations import add_annotation, write_annotations_atomic

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    add_annotation(out, STUDY, 1, tag="lr")
    add_annotation(out, STUDY, 2, tag="keep", note="n")
    _extract(src, out)
    add_annotation(out, STUDY, 1, tag="lr", remove=True)
    _extract(src, out)
    assert _cells(out, 1) == ("", "")
    assert [a.tag for a in read_annotations(out / "annotations.csv")] == ["keep"]
    # a row deleted from annotations.csv by hand stays deleted too
    write_annotations_atomic(out / "annotations.csv", [])
    _extract(src, out)
    _extract(src, out)
    assert _cells(out, 2) == ("", "")
    assert read_annotations(out / "annotations.csv") == []


def test_hand_edit_of_annotations_csv_wins_over_the_old_summary(tmp_path: Path) -> None:
    from hpo_analysis.annotations import Annotation, add_annotation, write_annotations_atomic

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    add_annotation(out, STUDY, 0, tag="a", note="old")
    _extract(src, out)
    write_annotations_atomic(out / "annotations.csv", [Annotation(STUDY, 0, "b", "new", "t")])
    _extract(src, out)
    assert _cells(out, 0) == ("b", "new")


def test_summary_cell_edits_add_change_and_remove(tmp_path: Path) -> None:
    from hpo_analysis.annotations import add_annotation

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    add_annotation(out, STUDY, 0, tag="a")
    add_annotation(out, STUDY, 0, tag="b", note="why b")
    add_annotation(out, STUDY, 1, note="one")
    _extract(src, out)
    assert _cells(out, 0) == ("a; b", "why b")
    # tags: remove a, keep b, add c; note of trial 1 emptied; trial 2 gets a new note
    _edit_summary(out, 0, tags="b; c")
    _edit_summary(out, 1, note="")
    _edit_summary(out, 2, note="=typed")
    _extract(src, out)
    assert _cells(out, 0) == ("b; c", "why b")
    assert _cells(out, 1) == ("", "")
    assert _cells(out, 2) == ("", "'=typed")
    # removing tag b through the cell keeps its note as a note of the trial
    _edit_summary(out, 0, tags="c")
    _extract(src, out)
    assert _cells(out, 0) == ("c", "why b")
    # an edited note cell replaces the notes; tags stay
    _edit_summary(out, 0, note="rewritten")
    _extract(src, out)
    assert _cells(out, 0) == ("c", "rewritten")
    annotations = {(a.trial_num, a.tag, a.note) for a in read_annotations(out / "annotations.csv")}
    assert annotations == {(0, "c", ""), (0, "", "rewritten"), (2, "", "=typed")}


def test_summary_edit_and_annotate_combined(tmp_path: Path) -> None:
    """A cell edited in the spreadsheet wins for that cell; annotate wins for the others."""
    from hpo_analysis.annotations import add_annotation

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    add_annotation(out, STUDY, 0, tag="x", note="n1")
    _extract(src, out)
    _edit_summary(out, 0, tags="x; y")  # typed in the spreadsheet
    add_annotation(out, STUDY, 0, tag="x", note="n2")  # note updated with annotate
    _extract(src, out)
    assert _cells(out, 0) == ("x; y", "n2")


def test_output_sets_of_older_versions_only_add(tmp_path: Path) -> None:
    from hpo_analysis.annotations import WRITTEN_CELLS

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    (out / WRITTEN_CELLS).unlink()
    _edit_summary(out, 1, tags="t", note="typed")
    _extract(src, out)
    assert _cells(out, 1) == ("t", "typed")
    assert (out / WRITTEN_CELLS).exists()


def test_annotate_refuses_unknown_and_negative_trials(tmp_path: Path) -> None:
    src, out = _tree(tmp_path), tmp_path / "out"
    assert run_cli(*EXTRACT, str(src), "--out", str(out)).returncode == 0
    unknown = run_cli("annotate", str(out), STUDY, "999", "--tag", "x")
    assert unknown.returncode == 2
    assert f"no trial {STUDY}/999 in this dataset" in unknown.stderr
    assert read_annotations(out / "annotations.csv") == []
    negative = run_cli("annotate", str(out), STUDY, "-1", "--tag", "x")
    assert negative.returncode == 2 and "0 or more" in negative.stderr
    forced = run_cli("annotate", str(out), STUDY, "999", "--tag", "x", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "no such trial in this dataset yet" in forced.stdout
    assert [a.trial_num for a in read_annotations(out / "annotations.csv")] == [999]


def test_oversized_notes_are_refused_and_oversized_files_still_read(tmp_path: Path) -> None:
    from hpo_analysis.annotations import (
        MAX_NOTE_CHARS,
        Annotation,
        AnnotationError,
        add_annotation,
        write_annotations_atomic,
    )

    src, out = _tree(tmp_path), tmp_path / "out"
    _extract(src, out)
    try:
        add_annotation(out, STUDY, 0, note="x" * (MAX_NOTE_CHARS + 1))
    except AnnotationError as err:
        assert "limit" in str(err)
    else:
        raise AssertionError("an oversized note was accepted")
    huge = "y" * 200_000  # over the csv module's default field limit of 131,072
    write_annotations_atomic(out / "annotations.csv", [Annotation(STUDY, 0, "", huge, "t")])
    _extract(src, out)
    assert _cells(out, 0) == ("", huge)
    from hpo_analysis.report import read_summary
    from hpo_analysis.validate import validate_dir

    assert validate_dir(out) == []
    assert read_summary(out / "hpo_summary.csv")[0]["note"] == huge
    add_annotation(out, STUDY, 1, tag="after")
    _extract(src, out)
    assert _cells(out, 1) == ("after", "")
    from hpo_analysis.mcp_server import DatasetService

    service = DatasetService(out)
    assert service.overview()["n_trials"] == 3
    assert service.trial(STUDY, 0)["note"] == huge


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["study", "trial_num", "tags", "note", "x", "", "7"]), max_size=6),
        max_size=6,
    )
)
def test_edit_cells_are_what_a_dict_reader_gives(rows: list[list[str]]) -> None:
    """The four cells read from each row of the old summary are csv.DictReader's: blank rows
    skipped, a repeated column name read from its last column, None beyond a short row."""
    import csv
    import io

    from hpo_analysis.annotations import _EDIT_COLUMNS, _edit_cells

    text = io.StringIO()
    csv.writer(text).writerows(rows)
    expected = [
        {name: row.get(name) for name in _EDIT_COLUMNS}
        for row in csv.DictReader(io.StringIO(text.getvalue()))
    ]
    assert list(_edit_cells(csv.reader(io.StringIO(text.getvalue())))) == expected
