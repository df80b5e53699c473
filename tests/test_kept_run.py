"""A run with nothing changed since the last one keeps its output set; any change runs."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hpo_analysis import cache, extract, pipeline
from hpo_analysis.cache import CACHE_DIR, RUN_FILE
from hpo_analysis.example import generate_example
from hpo_analysis.model import Settings

from .conftest import read_csv, rewrite_same_size_keeping_mtime, run_cli, write_trial

STUDY = "phase6a_2M_h1_threshold_1pct"  # a study of the generated example


def _files(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``root``: its bytes, inode and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            info = path.stat()
            key = path.relative_to(root).as_posix()
            found[key] = (path.read_bytes(), info.st_ino, info.st_mtime_ns)
    return found


def _outputs(root: Path) -> dict[str, bytes]:
    """The output set's files but the cache, by relative path."""
    return {k: v[0] for k, v in _files(root).items() if not k.startswith(CACHE_DIR + "/")}


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two studies and the problems a run reports: a rejected file and a warned one."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    monkeypatch.setattr(cache, "RACY_WINDOW_NS", 0)  # what was written before a run settles
    src = tmp_path / "hpo"
    generate_example(src, budgets=("2M",), horizons=("h1", "h3"), trials_per_study=6, n_diverged=2)
    (src / STUDY / "trials" / "trial_9000.json").write_text('{"trial_number": 9000, "val')
    write_trial(src, STUDY, 9001, {"trial_number": 9001, "value": "not a number"})
    return src


def _extract(src: Path, out: Path, *options: str) -> tuple[int, str, str]:
    run = run_cli("extract", str(src), "--out", str(out), "--no-report", *options)
    return run.returncode, run.stdout, run.stderr


def test_nothing_changed_keeps_the_output_set(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "analysis"
    code, stdout, stderr = _extract(tree, out)
    assert code == 0 and "; wrote " in stdout
    assert "trial_9000.json" in stderr and "trial_9001.json" in stderr
    first = _files(out)

    def read(*args: object, **kwargs: object) -> object:
        raise AssertionError("a file was read")

    monkeypatch.setattr(pipeline, "_collect", read)
    code, again, said = _extract(tree, out)
    assert code == 0
    assert again == stdout.replace("; wrote ", "; nothing changed since the last run, kept ")
    assert said == stderr  # the same problems, said again
    assert _files(out) == first  # not a byte, not a file rewritten


def _summary_cell_edited(src: Path, out: Path) -> None:
    """A tag typed into the summary's first row, saved as a spreadsheet would."""
    with open(out / "hpo_summary.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["tags"] = "check"
    with open(out / "hpo_summary.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


CHANGES: dict[str, Callable[[Path, Path], object]] = {
    "an input's bytes, same size and mtime": lambda src, out: rewrite_same_size_keeping_mtime(
        src / STUDY / "trials" / "trial_0001.json"
    ),
    "an input touched": lambda src, out: os.utime(src / STUDY / "trials" / "trial_0002.json"),
    "an input added": lambda src, out: write_trial(
        src, STUDY, 77, {"trial_number": 77, "value": 0.5}
    ),
    "an input removed": lambda src, out: (src / STUDY / "trials" / "trial_0003.json").unlink(),
    "an output edited": lambda src, out: (out / "findings.json").write_bytes(
        (out / "findings.json").read_bytes().replace(b"trials", b"TRIALS", 1)
    ),
    "an output removed": lambda src, out: (out / "README.md").unlink(),
    "a tag typed into the summary": _summary_cell_edited,
    "an annotation added": lambda src, out: run_cli(
        "annotate", str(out), STUDY, "1", "--tag", "odd"
    ),
    "the record damaged": lambda src, out: (out / CACHE_DIR / RUN_FILE).write_bytes(
        (out / CACHE_DIR / RUN_FILE).read_bytes().replace(b'"n_trials":', b'"n_trials":"', 1)
    ),
    "the record removed": lambda src, out: (out / CACHE_DIR / RUN_FILE).unlink(),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_gives_a_run_equal_to_a_full_one(tree: Path, tmp_path: Path, change: str) -> None:
    out = tmp_path / "analysis"
    assert _extract(tree, out)[0] == 0
    CHANGES[change](tree, out)
    code, stdout, _ = _extract(tree, out)
    assert code == 0 and "; wrote " in stdout
    fresh = tmp_path / "fresh"
    assert _extract(tree, fresh, "--no-cache")[0] == 0
    mine, theirs = _outputs(out), _outputs(fresh)
    assert mine.keys() - {"annotations.csv"} == theirs.keys()
    annotated = change in ("a tag typed into the summary", "an annotation added")
    # (an annotation is in the tables of all trials, not in the manifest or the findings)
    tables = ("hpo_summary.csv", "trials.parquet")
    for name in ("manifest.csv", "findings.json", *tables):
        assert (mine[name] == theirs[name]) != (annotated and name in tables), name
    if not annotated:
        assert mine["diverged_analysis.csv"] == theirs["diverged_analysis.csv"]
    if annotated:
        tagged = [r for r in read_csv(out / "hpo_summary.csv") if r["tags"]]
        assert len(tagged) == 1
    assert _extract(tree, out)[1] == stdout.replace(
        "; wrote ", "; nothing changed since the last run, kept "
    )


@pytest.mark.parametrize(
    "options",
    [("--top-k", "5"), ("--no-cache",), ("-q",)],
    ids=["settings", "no cache", "another command line"],
)
def test_other_settings_or_command_give_a_run(
    tree: Path, tmp_path: Path, options: tuple[str, ...]
) -> None:
    out = tmp_path / "analysis"
    assert _extract(tree, out)[0] == 0
    code, stdout, _ = _extract(tree, out, *options)
    assert code == 0 and "; wrote " in stdout
    assert (out / CACHE_DIR / RUN_FILE).exists() == ("--no-cache" not in options)


def test_another_source_date_gives_a_run(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "analysis"
    extract([tree], out, Settings(), command="x")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767312000")
    assert not extract([tree], out, Settings(), command="x").kept
    assert extract([tree], out, Settings(), command="x").kept


@pytest.mark.parametrize("source", ["folder", "database file"])
def test_a_sqlite_storage_with_a_write_ahead_log_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """A study writing in WAL mode adds its trials to ``optuna.db-wal``; the database file's
    stat does not change until a checkpoint, so its results are never reused while a log is
    beside it. (Given the database file as the source, the log is not even a discovered
    file.)"""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    monkeypatch.setattr(cache, "RACY_WINDOW_NS", 0)
    folder = tmp_path / "hpo" / STUDY
    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'optuna.db'}"
    study = optuna.create_study(study_name=STUDY, storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    out = tmp_path / "analysis"
    sources = [tmp_path / "hpo"] if source == "folder" else [folder / "optuna.db"]
    assert extract(sources, out, Settings(), command="x").n_trials == 3
    connection = sqlite3.connect(folder / "optuna.db")  # held open: no checkpoint on close
    try:
        assert connection.execute("pragma journal_mode=wal").fetchone() == ("wal",)
        before = (folder / "optuna.db").stat()
        optuna.load_study(study_name=STUDY, storage=url).optimize(
            lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=2
        )
        assert (folder / "optuna.db-wal").stat().st_size > 0
        assert (folder / "optuna.db").stat().st_mtime_ns == before.st_mtime_ns
        result = extract(sources, out, Settings(), command="x")
        assert (result.n_trials, result.kept) == (5, False)
        again = extract(sources, out, Settings(), command="x")
        assert (again.n_trials, again.kept) == (5, False)
    finally:
        connection.close()


def test_settled_inputs_are_proven_unchanged_without_the_index(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every input was settled when the last run recorded it, the stats alone prove
    them unchanged (a digest of them in run.json): the per-file index is not read."""
    out = tmp_path / "analysis"
    extract([tree], out, Settings(), command="x")

    def opened(*args: object, **kwargs: object) -> object:
        raise AssertionError("the per-file index was read")

    with monkeypatch.context() as patch:
        patch.setattr(cache.PreviousCache, "open", opened)
        assert extract([tree], out, Settings(), command="x").kept


def test_a_racy_input_is_proven_unchanged_through_the_index(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counted_hashes: list[str]
) -> None:
    """A file changed within the racy window before the last run has no proof by its stat:
    the run hashes it through the per-file index, and keeps the set when it is unchanged."""
    monkeypatch.setattr(cache, "RACY_WINDOW_NS", 10**18)  # everything is recent
    out = tmp_path / "analysis"
    extract([tree], out, Settings(), command="x")
    counted_hashes.clear()
    assert extract([tree], out, Settings(), command="x").kept
    assert len(counted_hashes) > 10  # every input, by its sha256
    rewrite_same_size_keeping_mtime(tree / STUDY / "trials" / "trial_0001.json")
    assert not extract([tree], out, Settings(), command="x").kept


_OPTUNA_STUDY = """
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.create_study(study_name=sys.argv[2], storage="sqlite:///" + sys.argv[1])
study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
"""


def test_a_wal_database_is_read_without_writing_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database in WAL mode with every connection closed has no log beside it; reading it
    writes none (a read-only connection would create ``-wal`` and ``-shm``), and once a study
    writes to it again, its log is read, even with the database file given as the source (the
    log is then no discovered file, and the file's stat has not changed)."""
    optuna = pytest.importorskip("optuna")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    monkeypatch.setattr(cache, "RACY_WINDOW_NS", 0)
    folder = tmp_path / "hpo" / STUDY
    folder.mkdir(parents=True)
    db = folder / "optuna.db"
    # the study in a process of its own: every connection is closed when it ends
    subprocess.run([sys.executable, "-c", _OPTUNA_STUDY, str(db), STUDY], check=True)
    connection = sqlite3.connect(db)
    assert connection.execute("pragma journal_mode=wal").fetchone() == ("wal",)
    connection.close()
    assert [p.name for p in folder.iterdir()] == ["optuna.db"]
    out = tmp_path / "analysis"
    assert extract([db], out, Settings(), command="x").n_trials == 3
    assert [p.name for p in folder.iterdir()] == ["optuna.db"]  # nothing written beside it
    assert extract([db], out, Settings(), command="x").kept
    connection = sqlite3.connect(db)  # held open: no checkpoint on close
    try:
        before = db.stat()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}").optimize(
            lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=2
        )
        assert (folder / "optuna.db-wal").stat().st_size > 0
        assert db.stat().st_mtime_ns == before.st_mtime_ns
        result = extract([db], out, Settings(), command="x")
        assert (result.n_trials, result.kept) == (5, False)
    finally:
        connection.close()
